# The seed's PPC experiment, verbatim: one persistent service per port (80 and 22), so a
# client's ports may land on different real servers. Sourced in the VM by seed.rs.
vip_on_director
ipvsadm -C
ipvsadm -A -t 192.168.6.101:80 -s rr -p 120
ipvsadm -a -t 192.168.6.101:80 -r 192.168.60.101 -g
ipvsadm -a -t 192.168.6.101:80 -r 192.168.60.102 -g
ipvsadm -A -t 192.168.6.101:22 -s rr -p 120
ipvsadm -a -t 192.168.6.101:22 -r 192.168.60.101 -g
ipvsadm -a -t 192.168.6.101:22 -r 192.168.60.102 -g

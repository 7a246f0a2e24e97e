# The seed's PCC experiment, verbatim: one persistent service on port 0, so every port a
# client uses goes to one real server. Sourced in the VM by crates/lvsctl-vmtest/tests/seed.rs.
vip_on_director
ipvsadm -C
ipvsadm -A -t 192.168.6.101:0 -s rr -p 120
ipvsadm -a -t 192.168.6.101:0 -r 192.168.60.101 -g
ipvsadm -a -t 192.168.6.101:0 -r 192.168.60.102 -g

# The seed's PNMPP experiment, verbatim: mangle marks :80 and :22 of the VIP with 10, and
# one persistent firewall-mark service groups both ports. Sourced in the VM by seed.rs.
vip_on_director
ipvsadm -C
iptables -t mangle -A PREROUTING -d 192.168.6.101 -p tcp --dport 80 -j MARK --set-mark 10
iptables -t mangle -A PREROUTING -d 192.168.6.101 -p tcp --dport 22 -j MARK --set-mark 10
ipvsadm -A -f 10 -s rr -p 120
ipvsadm -a -f 10 -r 192.168.60.101 -g
ipvsadm -a -f 10 -r 192.168.60.102 -g

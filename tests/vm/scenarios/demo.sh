# shellcheck shell=bash
# Guest side of tests/vm/demo.sh: on the seed topology, apply the seed's three examples in
# turn with lvsctl and show which real server answers each client on :80 and :22. Runs
# INSIDE the VM (lvsctl at /opt/lvsctl, the examples at /opt/examples).

LVSCTL=/opt/lvsctl

# run CMD...: show a command, then run it.
run() {
    printf '\n$ %s\n' "$*"
    "$@"
}

# who_answers ORDER...: send requests in ORDER (CLIENT:PORT words) twice over and print a
# table of the real servers that answered each client on :80 and :22. Fails when a request
# got no answer.
who_answers() {
    local -A seen=()
    local c p server verdict s80 s22 rc=0
    probe_rounds 2 "$@" >/tmp/demo-probes || rc=1
    # probe <client> <port> <server> <body>
    while read -r _ c p server _; do
        if [[ " ${seen[$c:$p]:-} " != *" $server "* ]]; then
            seen[$c:$p]="${seen[$c:$p]:+${seen[$c:$p]} }$server"
        fi
    done </tmp/demo-probes
    printf '\nrequests: %s (twice over)\n' "$*"
    printf '  %-8s %-8s %-8s\n' client :80 :22
    for c in c1 c2; do
        if [[ -z ${seen[$c:80]:-} || -z ${seen[$c:22]:-} ]]; then
            verdict="NO ANSWER"
            rc=1
        elif [[ ${seen[$c:80]} == "${seen[$c:22]}" && ${seen[$c:80]} != *" "* ]]; then
            verdict="same real server for both ports"
        else
            verdict="different real servers"
        fi
        s80=${seen[$c:80]:--} s22=${seen[$c:22]:--}
        # Several servers for one port print as RS1/RS2.
        printf '  %-8s %-8s %-8s %s\n' "$c" "${s80// //}" "${s22// //}" "$verdict"
    done
    return "$rc"
}

echo "The seed topology: clients c1 192.168.130.192 and c2 192.168.130.195, director,"
echo "real servers RS1 192.168.60.101 and RS2 192.168.60.102 (DR, VIP on lo), VIP 192.168.6.101."
echo "The examples leave the VIP on the director to the operator:"
run ip addr add 192.168.6.101/32 dev lo

flag=
for exp in pcc ppc pnmpp; do
    echo
    echo "=== $exp: examples/$exp.yaml ==="
    head -n 1 "/opt/examples/$exp.yaml"
    if [[ -n $flag ]]; then
        echo "(it replaces every service of the previous example, so lvsctl wants --allow-destroy)"
    fi
    run "$LVSCTL" -q apply $flag -f "/opt/examples/$exp.yaml" || exit 1
    run ipvsadm -L -n
    if iptables -t mangle -S LVSCTL-MARK >/dev/null 2>&1; then
        run iptables -t mangle -S LVSCTL-MARK
    fi
    case $exp in
        # Per-port services schedule independently: c1 takes the first RS of :80 and c2
        # the first RS of :22, which splits each client's ports.
        ppc | pnmpp) who_answers c1:80 c2:80 c2:22 c1:22 || exit 1 ;;
        *) who_answers c1:80 c2:80 c1:22 c2:22 || exit 1 ;;
    esac
    flag=--allow-destroy
done
echo
echo "lvsctl again with the last example: nothing to do"
run "$LVSCTL" -q apply -f /opt/examples/pnmpp.yaml

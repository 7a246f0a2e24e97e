//! VIP addresses and real-server sysctls against the real kernel, each case in a fresh network
//! namespace. Run as root: `cargo test -p lvsctl-vip --test netns`. `missing_interface` checks
//! the dummy link lvsctl creates where the kernel has the dummy type, and the error that says
//! to load it where it has not (this host); the VM tests (`lvsctl_cli.rs`, VIPs on `lvs0`)
//! check the creation on the VM's kernel.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Command;

use lvsctl_vip::{
    ADDR_PROTO, AddOutcome, ConfKey, REALSERVER_ADDR_PROTO, RealServerChange, RealServerSpec, Side,
    VipError, Vips,
};
use support::in_netns;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// iproute2, for the tests' own hand-made setup and for an independent view of the kernel.
fn iproute(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn set(addrs: &[&str]) -> BTreeSet<IpAddr> {
    addrs.iter().map(|a| ip(a)).collect()
}

#[test]
fn add_observe_delete_on_lo() {
    in_netns("lo", || {
        let mut v = Vips::open().unwrap();
        let before = v.observe("lo").unwrap().unwrap();
        assert!(before.owned.is_empty());

        let out = v.add_vip("lo", ip("192.168.6.101")).unwrap();
        assert_eq!(
            out,
            AddOutcome {
                created_link: false,
                brought_up: true, // lo starts down in a new namespace
                added: true
            }
        );
        let shown = iproute(&["-4", "addr", "show", "dev", "lo"]);
        assert!(
            shown.contains("inet 192.168.6.101/32 scope global lo"),
            "{shown}"
        );

        let state = v.observe("lo").unwrap().unwrap();
        assert_eq!(state.interface, "lo");
        assert_eq!(state.owned, set(&["192.168.6.101"]));
        // lo's own addresses appeared when it came up; they are not lvsctl's.
        assert!(state.foreign.contains(&ip("127.0.0.1")), "{state:?}");
        let raw = v.addresses("lo").unwrap().unwrap();
        let vip = raw.iter().find(|a| a.addr == ip("192.168.6.101")).unwrap();
        assert_eq!((vip.prefix_len, vip.proto), (32, ADDR_PROTO));

        // Adding again is a no-op.
        assert_eq!(
            v.add_vip("lo", ip("192.168.6.101")).unwrap(),
            AddOutcome::default()
        );
        assert!(v.delete_vip("lo", ip("192.168.6.101")).unwrap());
        assert!(!v.delete_vip("lo", ip("192.168.6.101")).unwrap());
        assert!(v.observe("lo").unwrap().unwrap().owned.is_empty());
        assert!(!iproute(&["addr", "show", "dev", "lo"]).contains("192.168.6.101"));
    });
}

#[test]
fn ipv6_host_address_on_lo() {
    in_netns("lo6", || {
        let mut v = Vips::open().unwrap();
        v.add_vip("lo", ip("2001:db8::1")).unwrap();
        let shown = iproute(&["-6", "addr", "show", "dev", "lo"]);
        assert!(shown.contains("inet6 2001:db8::1/128"), "{shown}");
        let state = v.observe("lo").unwrap().unwrap();
        assert_eq!(state.owned, set(&["2001:db8::1"]));
        assert!(state.foreign.contains(&ip("::1")));
        assert!(v.delete_vip("lo", ip("2001:db8::1")).unwrap());
        assert!(v.observe("lo").unwrap().unwrap().owned.is_empty());
    });
}

#[test]
fn foreign_addresses_are_never_removed_or_taken_over() {
    in_netns("foreign", || {
        iproute(&["link", "set", "lo", "up"]);
        // The seed's way: an operator puts the VIP on lo by hand (no address protocol).
        iproute(&[
            "addr",
            "add",
            "192.168.6.101/32",
            "dev",
            "lo",
            "label",
            "lo:0",
        ]);
        iproute(&["addr", "add", "10.7.0.1/24", "dev", "lo"]);
        let mut v = Vips::open().unwrap();
        v.add_vip("lo", ip("192.168.6.102")).unwrap();

        let state = v.observe("lo").unwrap().unwrap();
        assert_eq!(state.owned, set(&["192.168.6.102"]));
        assert!(state.foreign.contains(&ip("192.168.6.101")));
        assert!(state.foreign.contains(&ip("10.7.0.1")));
        let label = v
            .addresses("lo")
            .unwrap()
            .unwrap()
            .into_iter()
            .find(|a| a.addr == ip("192.168.6.101"))
            .unwrap()
            .label;
        assert_eq!(label.as_deref(), Some("lo:0"));

        for addr in ["192.168.6.101", "10.7.0.1"] {
            let err = v.delete_vip("lo", ip(addr)).unwrap_err();
            assert!(matches!(err, VipError::NotOwned { .. }), "{err}");
            assert!(err.to_string().contains("was not added by lvsctl"), "{err}");
            let err = v.add_vip("lo", ip(addr)).unwrap_err();
            assert!(matches!(err, VipError::NotOwned { .. }), "{err}");
        }
        let shown = iproute(&["-4", "addr", "show", "dev", "lo"]);
        assert!(shown.contains("192.168.6.101/32"), "{shown}");
        assert!(shown.contains("10.7.0.1/24"), "{shown}");
    });
}

#[test]
fn addresses_on_a_veth() {
    in_netns("veth", || {
        iproute(&[
            "link", "add", "lvt0", "type", "veth", "peer", "name", "lvt1",
        ]);
        let mut v = Vips::open().unwrap();
        let link = v.link("lvt0").unwrap().unwrap();
        assert!(!link.up);
        iproute(&["addr", "add", "10.9.0.1/24", "dev", "lvt0"]);

        let out = v.add_vip("lvt0", ip("10.9.0.100")).unwrap();
        assert!(out.brought_up && out.added && !out.created_link);
        let out = v.add_vip("lvt0", ip("2001:db8::100")).unwrap();
        assert!(!out.brought_up && out.added);
        assert!(v.link("lvt0").unwrap().unwrap().up);

        let state = v.observe("lvt0").unwrap().unwrap();
        assert_eq!(state.owned, set(&["10.9.0.100", "2001:db8::100"]));
        assert!(state.foreign.contains(&ip("10.9.0.1")));
        // No duplicate address detection: the VIP is usable at once, never "tentative".
        let shown = iproute(&["-6", "addr", "show", "dev", "lvt0"]);
        let line = shown
            .lines()
            .find(|l| l.contains("2001:db8::100/128"))
            .unwrap();
        assert!(!line.contains("tentative"), "{shown}");
        // The peer is untouched.
        assert!(v.observe("lvt1").unwrap().unwrap().owned.is_empty());

        assert!(v.delete_vip("lvt0", ip("10.9.0.100")).unwrap());
        assert!(v.delete_vip("lvt0", ip("2001:db8::100")).unwrap());
        let state = v.observe("lvt0").unwrap().unwrap();
        assert!(state.owned.is_empty());
        assert!(state.foreign.contains(&ip("10.9.0.1")));
    });
}

/// The director's view after `vip_interface` moved from lvt0 to lvt1: lvsctl's addresses on
/// lvt0 are listed as elsewhere; those `lvsctl realserver` stamped on `lo` and on the
/// real-server interface (lvt2), and an address put on lvt0 by hand, are not.
#[test]
fn addresses_lvsctl_left_on_other_interfaces() {
    in_netns("elsewhere", || {
        iproute(&[
            "link", "add", "lvt0", "type", "veth", "peer", "name", "lvt1",
        ]);
        iproute(&[
            "link", "add", "lvt2", "type", "veth", "peer", "name", "lvt3",
        ]);
        let mut v = Vips::open().unwrap();
        // Missing, then present but empty: nothing of lvsctl's there yet.
        let state = v.observe_all("lvs9", &["lvt2"]).unwrap();
        assert!(
            state.owned.is_empty() && state.foreign.is_empty(),
            "{state:?}"
        );
        v.add_vip("lvt0", ip("10.9.0.100")).unwrap();
        v.add_vip("lvt0", ip("2001:db8::100")).unwrap();
        iproute(&["addr", "add", "10.9.0.1/24", "dev", "lvt0"]);
        v.add_vip("lo", ip("10.9.0.101")).unwrap();
        v.add_vip("lvt2", ip("10.9.0.102")).unwrap();
        v.add_vip("lvt1", ip("10.9.0.103")).unwrap();
        // `lvsctl realserver`'s VIP on a non-loopback interface the director's manifest does
        // not name: stamped as the real-server side's, never the director's to remove.
        v.realserver_execute(&RealServerChange::AddVip {
            interface: "lvt3".into(),
            addr: ip("10.9.0.104"),
        })
        .unwrap();

        let state = v.observe_all("lvt1", &["lvt2"]).unwrap();
        assert_eq!(state.interface, "lvt1");
        assert_eq!(state.owned, set(&["10.9.0.103"]));
        assert_eq!(
            state.elsewhere,
            [("lvt0".to_owned(), set(&["10.9.0.100", "2001:db8::100"]))].into()
        );
        // Without the real-server interface named, director-stamped addresses there count as
        // left behind; the real-server side's own never do.
        let state = v.observe_all("lvt1", &[]).unwrap();
        assert_eq!(
            state.elsewhere.keys().collect::<Vec<_>>(),
            ["lvt0", "lvt2"],
            "{state:?}"
        );

        assert!(v.delete_vip("lvt0", ip("10.9.0.100")).unwrap());
        assert!(v.delete_vip("lvt0", ip("2001:db8::100")).unwrap());
        let state = v.observe_all("lvt1", &["lvt2"]).unwrap();
        assert!(state.elsewhere.is_empty(), "{state:?}");
        assert!(iproute(&["addr", "show", "dev", "lvt0"]).contains("10.9.0.1/24"));
    });
}

#[test]
fn missing_interface() {
    in_netns("missing", || {
        let mut v = Vips::open().unwrap();
        assert_eq!(v.observe("lvs9").unwrap(), None);
        assert_eq!(v.link("lvs9").unwrap(), None);
        assert!(!v.delete_vip("lvs9", ip("10.0.0.1")).unwrap());
        assert!(matches!(
            v.observe("bad/name"),
            Err(VipError::InvalidInterface { .. })
        ));
        // Whether this kernel has the dummy link type decides which of the two is checked.
        match v.add_vip("lvs9", ip("10.0.0.1")) {
            // It has: the link is created, brought up, and takes IPv6 too.
            Ok(out) => {
                assert_eq!(
                    out,
                    AddOutcome {
                        created_link: true,
                        brought_up: true,
                        added: true
                    }
                );
                let out = v.add_vip("lvs9", ip("2001:db8::101")).unwrap();
                assert!(out.added && !out.created_link && !out.brought_up);
                let shown = iproute(&["-d", "link", "show", "lvs9"]);
                assert!(shown.contains("dummy"), "{shown}");
                let state = v.observe("lvs9").unwrap().unwrap();
                assert_eq!(state.owned, set(&["10.0.0.1", "2001:db8::101"]));
            }
            // It has not (this project's host): the error says so and what to do.
            Err(err) => {
                let msg = err.to_string();
                assert!(msg.starts_with("create dummy interface lvs9: "), "{msg}");
                assert!(msg.contains("load the dummy module"), "{msg}");
                assert_eq!(v.link("lvs9").unwrap(), None);
            }
        }
    });
}

fn sysctl(interface: &str, name: &str) -> String {
    ConfKey::new(interface, name).unwrap().read().unwrap()
}

#[test]
fn realserver_plan_apply_is_idempotent() {
    let host_before = (sysctl("all", "arp_ignore"), sysctl("all", "arp_announce"));
    in_netns("realserver", || {
        let mut v = Vips::open().unwrap();
        // A fresh namespace starts with the kernel defaults.
        assert_eq!(sysctl("all", "arp_ignore"), "0");
        let spec = RealServerSpec::new([ip("192.168.6.101"), ip("2001:db8::101")]);
        let plan = v.realserver_plan(&spec).unwrap();
        let text: Vec<String> = plan.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "~ link lo: down -> up",
                "~ sysctl net.ipv4.conf.all.arp_ignore: 0 -> 1",
                "~ sysctl net.ipv4.conf.all.arp_announce: 0 -> 2",
                "~ sysctl net.ipv4.conf.lo.arp_ignore: 0 -> 1",
                "~ sysctl net.ipv4.conf.lo.arp_announce: 0 -> 2",
                "+ vip 192.168.6.101/32 on lo",
                "+ vip 2001:db8::101/128 on lo",
            ]
        );
        assert_eq!(v.realserver_apply(&spec).unwrap(), plan);
        assert_eq!(sysctl("all", "arp_ignore"), "1");
        assert_eq!(sysctl("lo", "arp_announce"), "2");
        assert!(v.realserver_plan(&spec).unwrap().is_empty());
        assert!(v.realserver_apply(&spec).unwrap().is_empty());

        // An operator's hand-made VIP counts as present and is never removed; lvsctl's own
        // VIP that left the spec is removed.
        iproute(&[
            "addr",
            "add",
            "192.168.6.102/32",
            "dev",
            "lo",
            "label",
            "lo:0",
        ]);
        let spec2 = RealServerSpec::new([ip("192.168.6.102"), ip("2001:db8::101")]);
        let plan = v.realserver_apply(&spec2).unwrap();
        assert_eq!(
            plan,
            vec![RealServerChange::DeleteVip {
                interface: "lo".into(),
                addr: ip("192.168.6.101")
            }]
        );
        let state = v.observe_as(Side::RealServer, "lo").unwrap().unwrap();
        assert_eq!(state.owned, set(&["2001:db8::101"]));
        assert!(state.foreign.contains(&ip("192.168.6.102")));
        // Stamped as the real-server side's: never a director VIP, whatever the interface.
        let as_director = v.observe("lo").unwrap().unwrap();
        assert!(as_director.owned.is_empty(), "{as_director:?}");
        let rs_vip = v.addresses("lo").unwrap().unwrap();
        let rs_vip = rs_vip
            .iter()
            .find(|a| a.addr == ip("2001:db8::101"))
            .unwrap();
        assert_eq!(rs_vip.proto, REALSERVER_ADDR_PROTO);
        let spec3 = RealServerSpec::new([]);
        v.realserver_apply(&spec3).unwrap();
        let state = v.observe_as(Side::RealServer, "lo").unwrap().unwrap();
        assert!(state.owned.is_empty());
        assert!(state.foreign.contains(&ip("192.168.6.102")));
    });
    // /proc/sys/net is per namespace: the host's values did not move.
    assert_eq!(
        (sysctl("all", "arp_ignore"), sysctl("all", "arp_announce")),
        host_before
    );
}

#[test]
fn realserver_needs_an_existing_interface() {
    in_netns("realserver-missing", || {
        let mut spec = RealServerSpec::new([ip("10.0.0.1")]);
        spec.interface = "nope0".into();
        let err = Vips::open().unwrap().realserver_plan(&spec).unwrap_err();
        assert_eq!(err.to_string(), "interface nope0 does not exist");
        let mut spec = RealServerSpec::new([ip("10.0.0.1")]);
        spec.arp_interfaces = vec!["nope0".into()];
        let err = Vips::open().unwrap().realserver_plan(&spec).unwrap_err();
        assert!(
            err.to_string().contains("is there an interface nope0?"),
            "{err}"
        );
    });
}

//! What the daemon wants the kernel to be: the manifest's state minus health. Health only
//! subtracts: a failed real server is removed (or quiesced to weight 0), a recovered one comes
//! back with its manifest weight, and a service never disappears because its servers failed.

use std::collections::BTreeSet;

use lvsctl_health::{
    CheckConfig, ExecProbe, HttpProbe, Probe, SameChecks, Status, Target, TcpProbe,
};
use lvsctl_model::manifest::{CheckKind, HealthCheck, Manifest, OnFailure};
use lvsctl_model::{DestKey, Observed, ServiceKey, State};

/// Turns a manifest health check into what the monitor runs. The http check's `deadline` is the
/// total limit and its `timeout` limits each connect and read; tcp and exec get `timeout` whole.
pub fn check_config(h: &HealthCheck) -> CheckConfig {
    let (probe, total) = match &h.kind {
        CheckKind::Http(x) => (
            Probe::Http(HttpProbe {
                port: Some(x.port),
                path: x.path.clone(),
                host: x.host.clone(),
                status: vec![x.status],
                expect: x.expect.clone(),
                max_response_bytes: HttpProbe::DEFAULT_MAX_RESPONSE_BYTES,
                io_timeout: (h.timeout < x.deadline).then_some(h.timeout),
                reuse_connection: x.reuse_connection,
            }),
            x.deadline,
        ),
        CheckKind::Tcp { port } => (Probe::Tcp(TcpProbe { port: Some(*port) }), h.timeout),
        CheckKind::Exec { command } => (
            Probe::Exec(ExecProbe {
                argv: command.clone(),
            }),
            h.timeout,
        ),
    };
    CheckConfig {
        probe,
        interval: h.interval,
        timeout: total,
        rise: h.rise,
        fall: h.fall,
    }
}

/// The state a real server starts in when it is first checked: the kernel's. Present is up,
/// absent is down; with `on_failure: quiesce`, where a failed server stays at weight 0, weight
/// 0 while the manifest wants a weight is down too. Nothing is changed until the checks say
/// otherwise. (Under `remove` a weight-0 server was quiesced by hand or is draining: taking it
/// for failed would delete it and drop its connections.)
pub fn initial_status(
    observed: &Observed,
    service: &ServiceKey,
    dest: &DestKey,
    weight: u32,
    on_failure: OnFailure,
) -> Status {
    match observed
        .state
        .services
        .get(service)
        .and_then(|s| s.dests.get(dest))
    {
        Some(d) if d.weight > 0 || weight == 0 || on_failure == OnFailure::Remove => Status::Up,
        _ => Status::Down,
    }
}

/// Every check the manifest asks for, with the state each starts in if it is new.
pub fn health_targets(
    manifest: &Manifest,
    observed: &Observed,
) -> Vec<(Target, CheckConfig, Status)> {
    let mut out = Vec::new();
    for svc in &manifest.services {
        for rs in &svc.real_servers {
            let Some(h) = &rs.health else { continue };
            let target = Target {
                service: svc.key,
                server: rs.key,
            };
            let initial = initial_status(observed, &svc.key, &rs.key, rs.spec.weight, h.on_failure);
            out.push((target, check_config(h), initial));
        }
    }
    out
}

/// A real server new to the monitor starts from what the same check (connecting to the same
/// place, with the same settings) says for another service (`known`), which knows more than
/// the kernel: a real server the kernel does not have may only be new, and one it has may
/// have been put there by `lvsctl apply` without a verdict (a new service). So a replacement
/// (new mark, VIP or port), or a NAT real server moved to another port but checked on the
/// same one, has its healthy servers from the pass that creates it, instead of none until
/// their first check on the new key while traffic is already sent there; and a server the
/// check finds down is not let into a new service until a check of it there passes.
pub fn start_from_same_checks(
    targets: &mut [(Target, CheckConfig, Status)],
    known: &SameChecks<'_>,
) {
    for (target, config, initial) in targets.iter_mut() {
        if let Some(status) = known.status(&target.server, config) {
            *initial = status;
        }
    }
}

/// What health took away from the manifest's state in one pass.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HealthEffect {
    /// Real servers removed because they failed (deleted at once, never drained).
    pub removed: BTreeSet<(ServiceKey, DestKey)>,
    /// Real servers kept at weight 0 because they failed (`on_failure: quiesce`).
    pub quiesced: BTreeSet<(ServiceKey, DestKey)>,
    /// Services whose sorry server is in, because every real server failed.
    pub sorry: BTreeSet<ServiceKey>,
}

/// The manifest's desired state with health applied. `health` gives a checked real server's
/// status and whether a check has confirmed it yet.
pub fn desired_state(
    manifest: &Manifest,
    observed: &Observed,
    health: impl Fn(&Target) -> Option<(Status, bool)>,
) -> (State, HealthEffect) {
    let mut state = manifest.desired_state();
    let mut effect = HealthEffect::default();
    for svc in &manifest.services {
        let Some(service) = state.services.get_mut(&svc.key) else {
            continue;
        };
        // "Down" here means no real server can take a new connection: a server at weight 0
        // cannot either, healthy or not.
        let mut all_down = !svc.real_servers.is_empty();
        let mut all_confirmed = true;
        for rs in &svc.real_servers {
            let Some(h) = &rs.health else {
                all_down &= rs.spec.weight == 0;
                continue;
            };
            let target = Target {
                service: svc.key,
                server: rs.key,
            };
            match health(&target) {
                Some((Status::Down, confirmed)) => {
                    all_confirmed &= confirmed;
                    match h.on_failure {
                        OnFailure::Remove => {
                            service.dests.remove(&rs.key);
                            effect.removed.insert((svc.key, rs.key));
                        }
                        OnFailure::Quiesce => {
                            if let Some(d) = service.dests.get_mut(&rs.key) {
                                d.weight = 0;
                            }
                            effect.quiesced.insert((svc.key, rs.key));
                        }
                    }
                }
                // Up, or not checked yet (a check that has not been started): keep it.
                _ => all_down &= rs.spec.weight == 0,
            }
        }
        let Some(sorry) = &svc.sorry_server else {
            continue;
        };
        // While some verdict is still the kernel's (unconfirmed), keep the sorry server as the
        // kernel has it, so a restart neither adds nor removes it before the checks have run.
        let in_kernel = observed
            .state
            .services
            .get(&svc.key)
            .is_some_and(|s| s.dests.contains_key(&sorry.key));
        if all_down && (all_confirmed || in_kernel) {
            service.dests.insert(sorry.key, sorry.spec);
            effect.sorry.insert(svc.key);
        }
    }
    (state, effect)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use super::*;
    use lvsctl_model::manifest;

    const M: &str = "
services:
  - name: web
    protocol: tcp
    vip: 10.0.0.1
    port: 80
    real_servers:
      - {address: 10.0.1.1, weight: 5}
      - {address: 10.0.1.2, weight: 7}
      - {address: 10.0.1.3, health: false}
    health:
      http: {path: /.health.html, expect: OK}
  - name: quiet
    protocol: tcp
    vip: 10.0.0.2
    port: 80
    real_servers:
      - {address: 10.0.2.1, weight: 3}
      - {address: 10.0.2.2, weight: 3}
    sorry_server: {address: 10.0.9.9}
    health:
      tcp: {}
      on_failure: quiesce
";

    /// A check's verdict as the monitor gives it: down or up, confirmed or not.
    fn verdict(down: bool, confirmed: bool) -> Option<(Status, bool)> {
        Some((if down { Status::Down } else { Status::Up }, confirmed))
    }

    /// Sets a real server's weight in the kernel to 0.
    fn quiesce(observed: &mut Observed, service: &str, server: &str) {
        let svc = observed.state.services.get_mut(&service.parse().unwrap());
        svc.unwrap()
            .dests
            .get_mut(&server.parse().unwrap())
            .unwrap()
            .weight = 0;
    }

    /// The state each check starts in.
    fn starting(m: &Manifest, observed: &Observed) -> BTreeMap<Target, Status> {
        health_targets(m, observed)
            .into_iter()
            .map(|(t, _, s)| (t, s))
            .collect()
    }

    fn t(svc: &str, rs: &str) -> Target {
        Target {
            service: svc.parse().unwrap(),
            server: rs.parse().unwrap(),
        }
    }

    #[test]
    fn targets_skip_unchecked_servers_and_start_from_the_kernel() {
        let m = manifest::parse("m.yaml", M).unwrap();
        let mut observed = Observed {
            state: m.desired_state(),
            ..Observed::default()
        };
        // 10.0.2.2 is quiesced in the kernel while the manifest wants weight 3: it was down.
        quiesce(&mut observed, "tcp/10.0.0.2:80", "10.0.2.2:80");
        // 10.0.1.2 is absent.
        observed
            .state
            .services
            .get_mut(&"tcp/10.0.0.1:80".parse().unwrap())
            .unwrap()
            .dests
            .remove(&"10.0.1.2:80".parse().unwrap());
        let targets = starting(&m, &observed);
        assert_eq!(targets.len(), 4);
        assert_eq!(targets[&t("tcp/10.0.0.1:80", "10.0.1.1:80")], Status::Up);
        assert_eq!(targets[&t("tcp/10.0.0.1:80", "10.0.1.2:80")], Status::Down);
        assert_eq!(targets[&t("tcp/10.0.0.2:80", "10.0.2.1:80")], Status::Up);
        assert_eq!(targets[&t("tcp/10.0.0.2:80", "10.0.2.2:80")], Status::Down);

        // Under `on_failure: remove` (web), weight 0 in the kernel is a server quiesced by hand
        // or draining, not a failed one: it starts up, so it is never deleted before a check.
        quiesce(&mut observed, "tcp/10.0.0.1:80", "10.0.1.1:80");
        let targets = starting(&m, &observed);
        assert_eq!(targets[&t("tcp/10.0.0.1:80", "10.0.1.1:80")], Status::Up);
    }

    /// A server at weight 0 takes no new connection, healthy or not: when it is all a service
    /// has left, the sorry server comes in.
    #[test]
    fn a_healthy_server_at_weight_zero_does_not_keep_the_sorry_server_out() {
        let text = M.replace(
            "{address: 10.0.2.2, weight: 3}",
            "{address: 10.0.2.2, weight: 0}",
        );
        let m = manifest::parse("m.yaml", &text).unwrap();
        let (s, e) = desired_state(&m, &Observed::default(), |x: &Target| {
            verdict(x.server.to_string() == "10.0.2.1:80", true)
        });
        let quiet = &s.services[&"tcp/10.0.0.2:80".parse().unwrap()];
        assert!(quiet.dests.contains_key(&"10.0.9.9:80".parse().unwrap()));
        assert!(e.sorry.contains(&"tcp/10.0.0.2:80".parse().unwrap()));
        // With 10.0.2.1 up again, the weighted server takes traffic: no sorry server.
        let (s, e) = desired_state(&m, &Observed::default(), |_: &Target| {
            Some((Status::Up, true))
        });
        assert!(
            !s.services[&"tcp/10.0.0.2:80".parse().unwrap()]
                .dests
                .contains_key(&"10.0.9.9:80".parse().unwrap())
        );
        assert!(e.sorry.is_empty());
    }

    #[test]
    fn http_deadline_is_the_total_and_timeout_the_step_limit() {
        let m = manifest::parse("m.yaml", M).unwrap();
        let h = m.services[0].real_servers[0].health.as_ref().unwrap();
        let c = check_config(h);
        let Probe::Http(p) = &c.probe else { panic!() };
        assert_eq!(p.port, Some(80));
        assert_eq!(p.status, vec![200]);
        assert_eq!(p.expect.as_deref(), Some("OK"));
        assert!(p.reuse_connection, "keep-alive is the default");
        assert_eq!(c.timeout, h.timeout);
        assert_eq!((c.rise, c.fall), (h.rise, h.fall));
        let mut h = (**h).clone();
        if let CheckKind::Http(x) = &mut h.kind {
            x.reuse_connection = false;
        }
        let Probe::Http(p) = check_config(&h).probe else {
            panic!()
        };
        assert!(!p.reuse_connection);
    }

    #[test]
    fn health_subtracts_and_sorry_server_fills_in() {
        let m = manifest::parse("m.yaml", M).unwrap();
        let observed = Observed::default();
        let down: BTreeSet<Target> = [
            t("tcp/10.0.0.1:80", "10.0.1.1:80"),
            t("tcp/10.0.0.2:80", "10.0.2.1:80"),
        ]
        .into();
        let health = |x: &Target| verdict(down.contains(x), true);
        let (s, e) = desired_state(&m, &observed, health);
        let web = &s.services[&"tcp/10.0.0.1:80".parse().unwrap()];
        assert_eq!(web.dests.len(), 2);
        assert!(!web.dests.contains_key(&"10.0.1.1:80".parse().unwrap()));
        let quiet = &s.services[&"tcp/10.0.0.2:80".parse().unwrap()];
        assert_eq!(quiet.dests[&"10.0.2.1:80".parse().unwrap()].weight, 0);
        assert_eq!(quiet.dests[&"10.0.2.2:80".parse().unwrap()].weight, 3);
        assert!(e.sorry.is_empty());
        assert_eq!(e.removed.len(), 1);
        assert_eq!(e.quiesced.len(), 1);

        // Every server of "quiet" down and confirmed: the sorry server joins, the service stays.
        let (s, e) = desired_state(&m, &observed, |x: &Target| {
            verdict(x.service.to_string() == "tcp/10.0.0.2:80", true)
        });
        let quiet = &s.services[&"tcp/10.0.0.2:80".parse().unwrap()];
        assert_eq!(quiet.dests.len(), 3);
        assert!(quiet.dests.contains_key(&"10.0.9.9:80".parse().unwrap()));
        assert_eq!(e.sorry.len(), 1);

        // The same but unconfirmed (just started) and no sorry server in the kernel: not added.
        let (s, _) = desired_state(&m, &observed, |x: &Target| {
            verdict(x.service.to_string() == "tcp/10.0.0.2:80", false)
        });
        assert_eq!(
            s.services[&"tcp/10.0.0.2:80".parse().unwrap()].dests.len(),
            2
        );

        // All of "web" down: 10.0.1.3 has no check, so the service still has a server.
        let (s, _) = desired_state(&m, &observed, |_: &Target| Some((Status::Down, true)));
        let web = &s.services[&"tcp/10.0.0.1:80".parse().unwrap()];
        assert_eq!(
            web.dests.keys().map(|k| k.to_string()).collect::<Vec<_>>(),
            ["10.0.1.3:80"]
        );
    }
}

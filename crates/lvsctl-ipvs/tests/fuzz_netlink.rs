//! Fuzzing what lvsctl reads from the kernel (issue 8, "Bad input"): the netlink framing, the
//! IPVS message and attribute decoder (`lvsctl-netlink`) and the mapping of kernel records to
//! the model (`service_of`, `dest_of`, ...). No panic, no hang, bounded memory, whatever bytes
//! arrive.
//!
//! - `corpus_inputs_meet_their_expectations`: every `tests/fuzz-corpus/netlink/*.hex` (the
//!   golden fixtures plus hostile hand-made datagrams; a first line `# expect: ok|error|any`),
//!   always;
//! - `mutated_datagrams`: a time-boxed mutation fuzzer over that corpus (`LVSCTL_FUZZ_SECS`,
//!   default 8 s; `LVSCTL_SOAK=1` for 5 minutes);
//! - `every_truncation_and_every_byte_of_the_corpus`: each corpus datagram cut at every length
//!   and with every single byte set to 0x00, 0xff and its bit-flip, exhaustively.
//!
//! Beyond "no panic": the decoder yields at most one item per 16 bytes (so it always moves
//! on), and anything it decodes re-encodes to a datagram that decodes to the same thing.
#![allow(clippy::unwrap_used)]

#[path = "../../../tests/fuzz-corpus/fuzz_support.rs"]
mod fuzz_support;

use std::path::Path;
use std::time::Duration;

use fuzz_support::{CountingAlloc, Fuzz, Report, corpus};
use lvsctl_ipvs::codec::{
    DaemonRaw, DestRaw, Incoming, InfoRaw, IpvsMessage, ServiceRaw, TimeoutsRaw, decode_datagram,
    encode_ipvs,
};
use lvsctl_ipvs::{dest_of, service_of, service_spec_of};
use netlink_packet_core::ParseableParametrized;
use netlink_packet_generic::GenlHeader;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// The IPVS family id of the corpus (the golden fixtures use 0x24).
const FAMILY: u16 = 0x24;
const NLMSG_HDRLEN: usize = 16;

/// Everything lvsctl does with a received datagram, plus the decoder's promises.
fn decode(bytes: &[u8]) {
    let mut items = 0usize;
    for item in decode_datagram(bytes, FAMILY) {
        items += 1;
        assert!(
            items <= bytes.len() / NLMSG_HDRLEN + 1,
            "{items} items from {} bytes: the decoder is not moving on",
            bytes.len()
        );
        let Ok(incoming) = item else { continue };
        let _ = incoming.seq();
        if let Incoming::Ipvs { seq, flags, msg } = &incoming {
            use_message(msg);
            // What decodes re-encodes to the same message.
            let mut again = Vec::new();
            encode_ipvs(&mut again, FAMILY, *flags, *seq, msg.clone());
            let back: Vec<_> = decode_datagram(&again, FAMILY).collect();
            assert_eq!(back.len(), 1, "re-encoded into {} messages", back.len());
            match &back[0] {
                Ok(Incoming::Ipvs { msg: m, .. }) => assert_eq!(m, msg, "re-encoding changed it"),
                other => panic!("re-encoded message decodes as {other:?}"),
            }
        }
    }
    // The genl payload alone, under every command, as the socket's reply matching might see it.
    if bytes.len() > NLMSG_HDRLEN + 4 && bytes.len() <= 4096 {
        let payload = &bytes[NLMSG_HDRLEN + 4..];
        for cmd in 0..=18u8 {
            if let Ok(msg) = IpvsMessage::parse_with_param(payload, GenlHeader { cmd, version: 1 })
            {
                use_message(&msg);
            }
        }
    }
}

/// The model mapping lvsctl applies to kernel records.
fn use_message(msg: &IpvsMessage) {
    let service = msg.service().and_then(|s| ServiceRaw::from_attrs(s).ok());
    let dest = msg.dest().and_then(|d| DestRaw::from_attrs(d).ok());
    if let Some(s) = &service {
        let _ = service_spec_of(s);
        let dests: Vec<DestRaw> = dest.iter().cloned().collect();
        if let Ok((key, svc, counters)) = service_of(s, &dests) {
            // Display and serialisation of what came out must work too.
            let _ = key.to_string();
            let _ = format!("{svc:?}{counters:?}");
        }
    }
    if let Some(d) = &dest {
        for af in [2u16, 10, 0, 7] {
            if let Ok((k, spec)) = dest_of(d, af) {
                let _ = format!("{k} {spec:?}");
            }
        }
    }
    if let Some(d) = msg.daemon() {
        let _ = DaemonRaw::from_attrs(d);
    }
    let _ = InfoRaw::from_attrs(&msg.attrs);
    let _ = TimeoutsRaw::from_attrs(&msg.attrs);
}

const FUZZ: Fuzz = Fuzz {
    target: "netlink",
    // Datagrams are at most a few KiB; decoding one takes microseconds.
    case_limit: Duration::from_secs(5),
    // The decoded attributes are a small multiple of the datagram, plus the message copies.
    mem_limit: |len| (4 << 20) + 64 * len,
};

fn corpus_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fuzz-corpus/netlink")
}

fn expectation(text: &str) -> Option<&str> {
    text.lines().next()?.strip_prefix("# expect: ")
}

fn print_report(what: &str, r: &Report) {
    println!(
        "fuzz netlink {what}: {} cases, slowest {:?}, peak memory {} KiB, largest input {} bytes",
        r.cases,
        r.slowest,
        r.peak_bytes >> 10,
        r.largest_input
    );
}

#[test]
fn corpus_inputs_meet_their_expectations() {
    let _serial = fuzz_support::exclusive();
    let files = corpus(&corpus_dir());
    assert!(
        files.len() >= 60,
        "the corpus has only {} files",
        files.len()
    );
    let mut report = Report::default();
    let mut failures = Vec::new();
    for (name, bytes) in &files {
        FUZZ.check(&mut report, name, bytes, &decode);
        let text = std::fs::read_to_string(corpus_dir().join(name)).unwrap();
        let items: Vec<_> = decode_datagram(bytes, FAMILY).collect();
        let errors = items.iter().filter(|r| r.is_err()).count();
        match expectation(&text).unwrap_or("ok") {
            "ok" if errors > 0 => {
                failures.push(format!("{name}: expected to decode, got {items:?}"))
            }
            "error" if errors == 0 => {
                failures.push(format!("{name}: expected a decode error, got {items:?}"))
            }
            "ok" | "error" | "any" => {}
            other => failures.push(format!("{name}: unknown expectation {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    print_report("corpus", &report);
}

#[test]
fn every_truncation_and_every_byte_of_the_corpus() {
    let _serial = fuzz_support::exclusive();
    let files = corpus(&corpus_dir());
    let mut report = Report::default();
    for (name, bytes) in files.iter().filter(|(_, b)| b.len() <= 1024) {
        for cut in 0..bytes.len() {
            FUZZ.check(
                &mut report,
                &format!("{name} cut at {cut}"),
                &bytes[..cut],
                &decode,
            );
        }
        let mut b = bytes.clone();
        for i in 0..b.len() {
            let orig = b[i];
            for v in [0x00, 0xff, !orig, orig ^ 0x80] {
                b[i] = v;
                FUZZ.check(
                    &mut report,
                    &format!("{name} byte {i} = {v:#04x}"),
                    &b,
                    &decode,
                );
            }
            b[i] = orig;
        }
    }
    print_report("exhaustive edits", &report);
}

#[test]
fn mutated_datagrams() {
    let _serial = fuzz_support::exclusive();
    let seeds: Vec<Vec<u8>> = corpus(&corpus_dir()).into_iter().map(|(_, b)| b).collect();
    // Attribute and message headers worth splicing in: (len, type) pairs, nests, genl headers.
    let tokens: &[&[u8]] = &[
        &[0, 0, 0, 0],
        &[4, 0, 1, 0],
        &[4, 0, 2, 0],
        &[8, 0, 1, 0, 2, 0, 0, 0],
        &[6, 0, 1, 0, 10, 0, 0, 0],
        &[20, 0, 3, 0],
        &[12, 0, 7, 0, 1, 0, 0, 0, 255, 255, 255, 255],
        &[8, 0, 10, 0],
        &[8, 0, 12, 0],
        &[5, 0, 13, 0, 1, 0, 0, 0],
        &[1, 1, 0, 0],
        &[5, 1, 0, 0],
        &[0x24, 0],
        &[2, 0],
        &[3, 0],
        &[0x10, 0, 0, 0, 0x24, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0],
        &[
            0x14, 0, 0, 0, 3, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
        &[0xff, 0xff, 0xff, 0xff],
        &[0x00, 0x80],
        &[0x00, 0x40],
    ];
    let report = FUZZ.run(&seeds, tokens, 8192, &decode);
    assert!(report.cases > 0);
    print_report("mutated", &report);
}

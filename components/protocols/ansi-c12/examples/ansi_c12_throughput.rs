//! Decodes the C12.18 packet vectors and three table frames (a C12.22 push of ST 0/1/12/21-23,
//! a C12.18 session capture of ST 0/61-64, an OSGP-AES-128-PSK report through an identity
//! key provider) many times, and prints frames per second:
//! `cargo run --release -p ami-ansi-c12 --example ansi_c12_throughput`.

use std::path::Path;
use std::time::Instant;

use ami_ansi_c12::{c1222, osgp, packet, psem};
use ami_domain::crypto::NoKeys;

use ami_domain::crypto::PassThrough as Identity;

fn write_full(table: u16, data: &[u8]) -> Vec<u8> {
    let mut s = vec![0x40];
    s.extend_from_slice(&table.to_be_bytes());
    s.extend(psem::build_table_data(data));
    s
}

fn st0() -> Vec<u8> {
    let mut t = vec![0x02, 0x02, 0x18];
    t.extend_from_slice(b"EE\0\0");
    t.extend_from_slice(&[2, 0, 0x40, 0x40, 1, 0, 10, 0, 1, 0, 0, 0]);
    t.extend_from_slice(&[0xFF; 10]);
    t.push(1);
    t.extend_from_slice(&[0; 10]);
    t
}

/// The register push: 4 summations, 2 demands with times, 4 tiers.
fn register_push() -> Vec<u8> {
    let mut st12 = Vec::new();
    for (id, q) in [(0u32, 0b1001u32), (0, 0b0110), (1, 0b0011), (1, 0b1100)] {
        st12.extend((id | (q << 14)).to_le_bytes());
    }
    let st21 = vec![0x12, 0, 0, 4, 2, 0, 1, 4, 0, 0];
    let st22 = vec![0, 1, 2, 3, 0, 1, 0];
    let mut st23 = Vec::new();
    for tier in 0..5u8 {
        for s in 0..4i32 {
            st23.extend((1_000_000 * (s + 1) + i32::from(tier)).to_le_bytes());
        }
        for d in 0..2u8 {
            st23.extend([23, 11, 14, 9 + d, 15]);
            st23.extend(1234i32.to_le_bytes());
            st23.extend(2500.5f32.to_bits().to_le_bytes());
        }
    }
    let mut st1 = b"ACMEMODEL-A1".to_vec();
    st1.extend([1, 2, 3, 4]);
    st1.extend(b"SN00000000000042");
    let services: Vec<Vec<u8>> = [
        (0u16, st0()),
        (1, st1),
        (12, st12),
        (21, st21),
        (22, st22),
        (23, st23),
    ]
    .iter()
    .map(|(t, d)| write_full(*t, d))
    .collect();
    let refs: Vec<&[u8]> = services.iter().map(Vec::as_slice).collect();
    c1222::build(&[1, 2, 3], 1, &refs)
}

/// A C12.18 session reading a day of 15-minute load profile (96 intervals, 2 channels).
fn load_profile_session() -> Vec<u8> {
    let mut st61 = 0u32.to_le_bytes().to_vec();
    st61.extend(0x0400u16.to_le_bytes());
    st61.push(2);
    st61.extend(1u16.to_le_bytes());
    st61.extend(96u16.to_le_bytes());
    st61.extend([2, 15]);
    let st62 = vec![0, 0, 0, 0, 1, 0, 2];
    let mut st64 = vec![23, 11, 14, 23, 45];
    for i in 0..96u16 {
        st64.extend([0, 0]);
        st64.extend(i.to_le_bytes());
        st64.extend((i * 2).to_le_bytes());
    }
    let mut out = Vec::new();
    for (t, d) in [(0u16, st0()), (61, st61), (62, st62), (64, st64)] {
        let mut req = vec![0x30];
        req.extend(t.to_be_bytes());
        out.extend(packet::build(0, 0, 0, &req));
        out.push(packet::ACK);
        let mut resp = vec![0];
        resp.extend(psem::build_table_data(&d));
        out.extend(packet::build(0, 0, 0, &resp));
        out.push(packet::ACK);
    }
    out
}

fn osgp_report() -> Vec<u8> {
    let st21 = vec![0, 0, 0, 2, 0, 0, 0, 0, 0, 0];
    let services = [
        write_full(21, &st21),
        write_full(23, &[1, 0, 0, 0, 2, 0, 0, 0]),
    ];
    let refs: Vec<&[u8]> = services.iter().map(Vec::as_slice).collect();
    let mut f = vec![osgp::SECURITY_AES, 0, 1, 2, 3, 4, 5, 0, 0, 0, 1];
    f.extend(osgp::build_payload(&refs));
    f.extend([0; osgp::TAG]);
    f
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/vectors/ansi-c12/ansi-c12.jsonl");
    let packets: Vec<Vec<u8>> = ami_vectors::load(&path)?
        .into_iter()
        .map(|v| v.frame)
        .collect();
    let sets: [(&str, Vec<Vec<u8>>, u32); 4] = [
        ("C12.18 packet vectors", packets, 200_000),
        (
            "C12.22 push ST 0/1/12/21-23",
            vec![register_push()],
            200_000,
        ),
        (
            "C12.18 session ST 0/61-64",
            vec![load_profile_session()],
            50_000,
        ),
        ("OSGP AES report ST 21/23", vec![osgp_report()], 400_000),
    ];
    for (name, frames, rounds) in sets {
        let bytes: usize = frames.iter().map(Vec::len).sum();
        let mut values = 0usize;
        let start = Instant::now();
        for _ in 0..rounds {
            for f in &frames {
                let d = if f.first() == Some(&osgp::SECURITY_AES) {
                    ami_ansi_c12::decode(std::hint::black_box(f), 0, &mut Identity)?
                } else {
                    ami_ansi_c12::decode(std::hint::black_box(f), 0, &mut NoKeys)?
                };
                values += d.readings.len() + d.attributes.len() + d.events.len();
            }
        }
        let n = frames.len() as f64 * f64::from(rounds);
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name:30} {:3} frames, {:6.1} bytes and {:5.1} values per frame: {:>10.0} frames/s",
            frames.len(),
            bytes as f64 / frames.len().max(1) as f64,
            values as f64 / n,
            n / secs
        );
    }
    Ok(())
}

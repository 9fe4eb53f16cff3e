//! Prints the layers, records and decoded values of a frame given as hex on the command
//! line: `cargo run -p ami-mbus --example dump -- 68...16`. No keys: an encrypted frame
//! shows which key it needs.

fn main() {
    for arg in std::env::args().skip(1) {
        let frame: Vec<u8> = (0..arg.len() / 2)
            .filter_map(|i| arg.get(2 * i..2 * i + 2))
            .filter_map(|h| u8::from_str_radix(h, 16).ok())
            .collect();
        let t = if ami_mbus::wired::looks_wired(&frame) {
            ami_mbus::parse_wired(&frame, &mut ami_domain::crypto::NoKeys)
        } else {
            ami_mbus::parse_wireless(&frame, &mut ami_domain::crypto::NoKeys)
        };
        match t {
            Err(e) => println!("error: {e}"),
            Ok(t) => {
                println!(
                    "link {:?}\nell {:?}\ntpl {:?}\nci {:02X} meter {:?}",
                    t.link, t.ell, t.tpl, t.ci, t.meter
                );
                for item in t.records() {
                    match item {
                        Ok(ami_mbus::Item::Record(r)) => println!(
                            "  dif {:02X} st {} t {} su {} {:?} {:?} vif {:02X} {:02X?} {:?} exp {} q {} -> {:?}",
                            r.dif,
                            r.storage,
                            r.tariff,
                            r.subunit,
                            r.function,
                            r.vib.kind,
                            r.vib.vif,
                            r.vib.vifes,
                            r.vib.unit,
                            r.vib.exp,
                            r.vib.qualified,
                            r.value
                        ),
                        Ok(other) => println!("  {other:?}"),
                        Err(e) => println!("  error: {e}"),
                    }
                }
                match ami_mbus::interpret(&t, 0) {
                    Ok(d) => {
                        for r in d.readings {
                            println!("  = {} {} {}", r.register, r.value, r.unit);
                        }
                        for (o, a) in d.attributes {
                            println!("  = {o} {a:?}");
                        }
                    }
                    Err(e) => println!("  interpret error: {e}"),
                }
            }
        }
    }
}

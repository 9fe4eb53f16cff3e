//! `ami_bus::bundle::from_message` on arbitrary payloads (the first byte picks the frame count
//! the `Ami-Bundle` header declares): never panics, and whatever it accepts carries no more
//! frame bytes than the payload has and encodes back to the very same payload.

#![no_main]

use ami_bus::bundle::{self, BUNDLE_HEADER};
use ami_bus::{Headers, Message, Topology, header};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&count, payload)) = data.split_first() else {
        return;
    };
    let msg = Message {
        subject: "ami.raw.dlms.dcu-1".into(),
        headers: Headers::new()
            .with(header::PROTOCOL, "dlms")
            .with(header::ADAPTER, "dcu-1")
            .with(BUNDLE_HEADER, count.to_string()),
        payload: Bytes::copy_from_slice(payload),
    };
    let Ok(frames) = bundle::from_message(&msg) else {
        return;
    };
    assert_eq!(frames.len(), usize::from(count));
    let carried: usize = frames.iter().map(|f| f.data.len()).sum();
    assert!(carried <= payload.len());
    let again = bundle::to_message(&frames, "x", &Topology::default())
        .expect("frames read from a bundle fit in a bundle");
    assert_eq!(again.payload.as_ref(), payload, "read then written changes nothing");
});

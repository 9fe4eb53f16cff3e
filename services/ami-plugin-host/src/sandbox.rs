//! What a plugin instance lives in: its store state, a WASI context that grants nothing, the
//! crypto capability, and the linker that offers exactly that.

use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::decoder::ami::plugin::crypto::{self as wit, CryptoError, Kdf, KeyRef};
use crate::bindings::decoder::ami::plugin::crypto_ext as ext;
use crate::crypto::{CryptoCtx, error_to_ext, error_to_wit, ext_role, key_ref};
use crate::limits::MemoryCap;
use ami_crypto::KeyStore;
use ami_domain::crypto::Crypto;

/// The most a plugin may print to stderr per instance (its panic message goes there).
const STDERR_CAP: usize = 4096;

/// The data of one plugin store.
pub(crate) struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) cap: MemoryCap,
    pub(crate) crypto: CryptoCtx,
    pub(crate) stderr: MemoryOutputPipe,
}

/// A clock stopped at the epoch: plugins are pure functions and get no real time.
struct StoppedClock;

impl wasmtime_wasi::HostWallClock for StoppedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for StoppedClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

impl State {
    pub(crate) fn new(
        keys: Arc<dyn KeyStore>,
        budget: ami_crypto::budget::SharedBudget,
        memory_bytes: u64,
    ) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAP);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .wall_clock(StoppedClock)
            .monotonic_clock(StoppedClock)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            cap: MemoryCap {
                limit_bytes: memory_bytes,
                used: 0,
                hit: false,
            },
            crypto: CryptoCtx::with_shared_budget(keys, budget),
            stderr,
        }
    }

    /// Bytes the plugin has printed to stderr so far.
    pub(crate) fn stderr_len(&self) -> usize {
        self.stderr.contents().len()
    }

    /// What the plugin printed to stderr from byte `from` on, lossily decoded.
    pub(crate) fn stderr_since(&self, from: usize) -> String {
        let all = self.stderr.contents();
        String::from_utf8_lossy(all.get(from..).unwrap_or_default()).into_owned()
    }

    /// Whether the stderr buffer is half used: the instance is retired before a full buffer
    /// could make the plugin's own printing fail.
    pub(crate) fn stderr_worn(&self) -> bool {
        self.stderr_len() > STDERR_CAP / 2
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wit::Host for State {
    fn aes_gcm_decrypt(
        &mut self,
        key: KeyRef,
        iv: Vec<u8>,
        aad: Vec<u8>,
        ciphertext: Vec<u8>,
        tag: Vec<u8>,
    ) -> Result<Vec<u8>, CryptoError> {
        self.crypto
            .aes_gcm_decrypt(key_ref(&key), &iv, &aad, &ciphertext, &tag)
            .map_err(error_to_wit)
    }

    fn dlms_decrypt(
        &mut self,
        encryption: KeyRef,
        authentication: Option<KeyRef>,
        security_control: u8,
        iv: Vec<u8>,
        data: Vec<u8>,
        tag: Vec<u8>,
    ) -> Result<Vec<u8>, CryptoError> {
        self.crypto
            .dlms_decrypt(
                key_ref(&encryption),
                authentication.as_ref().map(key_ref),
                security_control,
                &iv,
                &data,
                &tag,
            )
            .map_err(error_to_wit)
    }

    fn aes_gmac_verify(
        &mut self,
        key: KeyRef,
        iv: Vec<u8>,
        aad: Vec<u8>,
        tag: Vec<u8>,
    ) -> Result<(), CryptoError> {
        self.crypto
            .aes_gmac_verify(key_ref(&key), &iv, &aad, &tag)
            .map_err(error_to_wit)
    }

    fn aes_cbc_decrypt(
        &mut self,
        key: KeyRef,
        iv: Vec<u8>,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, CryptoError> {
        self.crypto
            .aes_cbc_decrypt(key_ref(&key), &iv, &data)
            .map_err(error_to_wit)
    }

    fn aes_ctr_apply(
        &mut self,
        key: KeyRef,
        iv: Vec<u8>,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, CryptoError> {
        self.crypto
            .aes_ctr_apply(key_ref(&key), &iv, &data)
            .map_err(error_to_wit)
    }

    fn aes_cmac_verify(
        &mut self,
        key: KeyRef,
        data: Vec<u8>,
        mac: Vec<u8>,
    ) -> Result<(), CryptoError> {
        self.crypto
            .aes_cmac_verify(key_ref(&key), &data, &mac)
            .map_err(error_to_wit)
    }

    fn derive_key(&mut self, key: KeyRef, kdf: Kdf, input: Vec<u8>) -> Result<u32, CryptoError> {
        self.crypto
            .derive_key(key_ref(&key), crate::crypto::kdf(kdf), &input)
            .map_err(error_to_wit)
    }
}

impl crate::bindings::decoder::ami::plugin::crypto_ext::Host for State {
    fn dlms_decrypt_dedicated(
        &mut self,
        encryption: ext::StoredKey,
        authentication: Option<KeyRef>,
        security_control: u8,
        iv: Vec<u8>,
        data: Vec<u8>,
        tag: Vec<u8>,
    ) -> Result<Vec<u8>, ext::ExtError> {
        if encryption.role != ext::KeyRole::DlmsDedicated {
            return Err(wrong_role("dlms-decrypt-dedicated", "dlms-dedicated"));
        }
        self.crypto
            .dlms_decrypt(
                ami_domain::crypto::KeyRef::Stored {
                    meter: &encryption.meter,
                    role: ext_role(encryption.role),
                },
                authentication.as_ref().map(key_ref),
                security_control,
                &iv,
                &data,
                &tag,
            )
            .map_err(error_to_ext)
    }

    fn eax_prime_decrypt(
        &mut self,
        key: ext::StoredKey,
        cleartext: Vec<u8>,
        ciphertext: Vec<u8>,
        tag: Vec<u8>,
    ) -> Result<Vec<u8>, ext::ExtError> {
        if key.role != ext::KeyRole::AnsiC1222 {
            return Err(wrong_role("eax-prime-decrypt", "ansi-c1222"));
        }
        self.crypto
            .eax_prime_decrypt(
                ami_domain::crypto::KeyRef::Stored {
                    meter: &key.meter,
                    role: ext_role(key.role),
                },
                &cleartext,
                &ciphertext,
                &tag,
            )
            .map_err(error_to_ext)
    }
}

/// A `crypto-ext` function called with a key of another role.
fn wrong_role(function: &str, role: &str) -> ext::ExtError {
    ext::ExtError::Crypto(CryptoError::InvalidInput(format!(
        "{function} takes a {role} key"
    )))
}

impl crate::bindings::decoder::ami::plugin::types::Host for State {}

/// A fresh store with the limiter installed.
pub(crate) fn new_store(
    engine: &Engine,
    keys: Arc<dyn KeyStore>,
    budget: ami_crypto::budget::SharedBudget,
    memory_bytes: u64,
) -> Store<State> {
    let mut store = Store::new(engine, State::new(keys, budget, memory_bytes));
    store.limiter(|s| &mut s.cap);
    store
}

/// Import prefixes a plugin may use. WASI is linked with every capability withheld (no files,
/// no environment, no sockets, stopped clocks); sockets and HTTP are refused outright.
pub(crate) const GRANTED_IMPORTS: &[&str] = &[
    "ami:plugin/types@",
    "ami:plugin/crypto@",
    "ami:plugin/crypto-ext@",
    "wasi:cli/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
];

/// The linker offering WASI (capability-less) and the crypto interfaces (`crypto` and
/// `crypto-ext` of 0.1.1, which also serve the imports of plugins built against 0.1.0).
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<State>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    crate::bindings::decoder::Decoder::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?;
    Ok(linker)
}

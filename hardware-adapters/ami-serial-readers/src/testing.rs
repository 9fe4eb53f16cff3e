//! A pseudo-terminal pair for tests (feature `testing`): the reader opens the slave end as
//! it would a real port; the test plays the meter or the dongle on the master end, and reads
//! back the line settings the reader put on the slave (the master's termios calls act on the
//! slave's settings), so a test sees a baud rate switch really happen. The character frame
//! cannot be checked this way: Linux pseudo terminals keep 8 data bits without parity
//! whatever is asked (`pty_set_termios`), so 7E1 is checked on the settings instead.

use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::fs::{OFlags, fcntl_setfl};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::tcgetattr;

/// The master end of a pseudo terminal.
#[derive(Debug)]
pub struct Pty {
    master: File,
    /// The slave's device path, for [`crate::port::open`].
    pub slave: String,
}

impl Pty {
    /// A new pair; the master does not block.
    pub fn open() -> io::Result<Pty> {
        let fd: OwnedFd = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY)?;
        grantpt(&fd)?;
        unlockpt(&fd)?;
        let name = ptsname(&fd, Vec::new())?;
        fcntl_setfl(&fd, OFlags::NONBLOCK | OFlags::RDWR)?;
        let slave = name
            .into_string()
            .map_err(|_| io::Error::new(ErrorKind::InvalidData, "slave name is not UTF-8"))?;
        Ok(Pty {
            master: File::from(fd),
            slave,
        })
    }

    /// Writes all of `bytes` towards the reader (waits up to 10 s for it to read).
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !rest.is_empty() {
            match self.master.write(rest) {
                Ok(n) => rest = rest.get(n..).unwrap_or_default(),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                    if Instant::now() >= deadline {
                        return Err(io::Error::new(
                            ErrorKind::TimedOut,
                            "the reader does not read",
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what the reader sent until `done` says it is enough or `timeout` passes.
    pub fn read_until(&mut self, timeout: Duration, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while !done(&got) && Instant::now() < deadline {
            match self.master.read(&mut buf) {
                Ok(n) if n > 0 => got.extend_from_slice(buf.get(..n).unwrap_or_default()),
                // Nothing yet, or EIO while the slave is not open.
                _ => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        got
    }

    /// The slave's baud rate now.
    pub fn speed(&self) -> io::Result<u32> {
        Ok(tcgetattr(&self.master)?.input_speed())
    }

    /// Waits until the slave's speed is `baud`; returns the speed last seen.
    pub fn wait_speed(&self, baud: u32, timeout: Duration) -> io::Result<u32> {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.speed()?;
            if s == baud || Instant::now() >= deadline {
                return Ok(s);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

//! The serial line under a reader: a [`Link`] is anything that reads and writes bytes with a
//! timeout and can change its baud rate, which is what an IEC 62056-21 mode C session and a
//! P1 port need. [`SerialLink`] is a real port (a USB optical probe, a P1 cable, a radio
//! dongle, or a pseudo terminal in the tests) opened with [`open`].

use std::io::{self, Read, Write};
use std::time::Duration;

/// What went wrong on the serial line.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The port could not be opened or configured.
    #[error("serial port {path}: {reason}")]
    Open {
        /// The device path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A setting could not be applied to an open port.
    #[error("serial port setting {what}: {reason}")]
    Setting {
        /// The setting.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A read or a write failed.
    #[error("serial i/o: {0}")]
    Io(#[from] io::Error),
}

/// Parity of a character frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parity {
    /// No parity bit.
    None,
    /// Even parity.
    Even,
    /// Odd parity.
    Odd,
}

/// Baud rate and character frame of a line (`300 7E1`, `115200 8N1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineSettings {
    /// Bits per second.
    pub baud: u32,
    /// Data bits per character (7 or 8).
    pub data_bits: u8,
    /// Parity.
    pub parity: Parity,
    /// Stop bits (1 or 2).
    pub stop_bits: u8,
}

impl LineSettings {
    /// IEC 62056-21 sign-on: 300 baud, 7 data bits, even parity, 1 stop bit.
    pub const IEC_SIGN_ON: LineSettings = LineSettings {
        baud: 300,
        data_bits: 7,
        parity: Parity::Even,
        stop_bits: 1,
    };
    /// DSMR 4 and 5 P1 ports: 115200 8N1.
    pub const P1_V4: LineSettings = LineSettings {
        baud: 115_200,
        data_bits: 8,
        parity: Parity::None,
        stop_bits: 1,
    };
    /// DSMR 2.2 and 3 P1 ports: 9600 7E1.
    pub const P1_V2: LineSettings = LineSettings {
        baud: 9600,
        data_bits: 7,
        parity: Parity::Even,
        stop_bits: 1,
    };
    /// USB radio dongles (iM871A): 57600 8N1.
    pub const DONGLE: LineSettings = LineSettings {
        baud: 57_600,
        data_bits: 8,
        parity: Parity::None,
        stop_bits: 1,
    };
}

impl std::fmt::Display for LineSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = match self.parity {
            Parity::None => 'N',
            Parity::Even => 'E',
            Parity::Odd => 'O',
        };
        write!(f, "{} {}{p}{}", self.baud, self.data_bits, self.stop_bits)
    }
}

/// A byte link with timeouts and a baud rate that can change mid-session.
pub trait Link: Read + Write + Send {
    /// Changes the baud rate (the character frame stays).
    fn set_baud(&mut self, baud: u32) -> Result<(), LinkError>;
    /// The baud rate in force.
    fn baud(&self) -> Result<u32, LinkError>;
    /// How long a read waits for the first byte before it fails with `TimedOut`.
    fn set_timeout(&mut self, timeout: Duration) -> Result<(), LinkError>;
    /// Drops bytes received and not yet read.
    fn clear_input(&mut self) -> Result<(), LinkError>;
    /// Returns once every byte written has left (so that a baud change cannot cut it off).
    fn drain(&mut self) -> Result<(), LinkError>;
}

/// A serial port.
pub struct SerialLink {
    port: Box<dyn serialport::SerialPort>,
}

impl std::fmt::Debug for SerialLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialLink")
            .field("name", &self.port.name())
            .finish_non_exhaustive()
    }
}

/// Opens the port at `path` with `settings`; reads wait up to `timeout`.
pub fn open(
    path: &str,
    settings: LineSettings,
    timeout: Duration,
) -> Result<SerialLink, LinkError> {
    let open_err = |reason: String| LinkError::Open {
        path: path.to_owned(),
        reason,
    };
    let data_bits = match settings.data_bits {
        5 => serialport::DataBits::Five,
        6 => serialport::DataBits::Six,
        7 => serialport::DataBits::Seven,
        8 => serialport::DataBits::Eight,
        n => return Err(open_err(format!("{n} data bits (5 to 8)"))),
    };
    let stop_bits = match settings.stop_bits {
        1 => serialport::StopBits::One,
        2 => serialport::StopBits::Two,
        n => return Err(open_err(format!("{n} stop bits (1 or 2)"))),
    };
    let parity = match settings.parity {
        Parity::None => serialport::Parity::None,
        Parity::Even => serialport::Parity::Even,
        Parity::Odd => serialport::Parity::Odd,
    };
    let port = serialport::new(path, settings.baud)
        .data_bits(data_bits)
        .stop_bits(stop_bits)
        .parity(parity)
        .flow_control(serialport::FlowControl::None)
        .timeout(timeout)
        .open()
        .map_err(|e| open_err(format!("{e} ({settings})")))?;
    Ok(SerialLink { port })
}

impl Read for SerialLink {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.port.read(buf)
    }
}

impl Write for SerialLink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.port.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.port.flush()
    }
}

fn setting(what: &'static str) -> impl FnOnce(serialport::Error) -> LinkError {
    move |e| LinkError::Setting {
        what,
        reason: e.to_string(),
    }
}

impl Link for SerialLink {
    fn set_baud(&mut self, baud: u32) -> Result<(), LinkError> {
        self.port.set_baud_rate(baud).map_err(setting("baud rate"))
    }

    fn baud(&self) -> Result<u32, LinkError> {
        self.port.baud_rate().map_err(setting("baud rate"))
    }

    fn set_timeout(&mut self, timeout: Duration) -> Result<(), LinkError> {
        self.port.set_timeout(timeout).map_err(setting("timeout"))
    }

    fn clear_input(&mut self) -> Result<(), LinkError> {
        self.port
            .clear(serialport::ClearBuffer::Input)
            .map_err(setting("clear input"))
    }

    fn drain(&mut self) -> Result<(), LinkError> {
        self.port.flush().map_err(LinkError::Io)
    }
}

/// Whether an i/o error is a read timeout (no byte within the link's timeout).
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_settings_of_each_link() {
        assert_eq!(LineSettings::IEC_SIGN_ON.to_string(), "300 7E1");
        assert_eq!(LineSettings::P1_V4.to_string(), "115200 8N1");
        assert_eq!(LineSettings::P1_V2.to_string(), "9600 7E1");
        assert_eq!(LineSettings::DONGLE.to_string(), "57600 8N1");
    }

    #[test]
    fn impossible_frames_are_refused_before_opening() {
        let bad = LineSettings {
            data_bits: 9,
            ..LineSettings::P1_V4
        };
        let e = open("/nonexistent/tty", bad, Duration::from_millis(1)).unwrap_err();
        assert!(e.to_string().contains("9 data bits"), "{e}");
        let e = open(
            "/nonexistent/tty",
            LineSettings::P1_V4,
            Duration::from_millis(1),
        )
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/tty"), "{e}");
    }
}

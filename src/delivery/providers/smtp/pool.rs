//! SMTP connections for the `smtp` provider: opening them (TLS, STARTTLS, AUTH), carrying one
//! message over one, and keeping the good ones for the next message.
//!
//! A message leaves in as few writes and round trips as possible:
//! - with PIPELINING and CHUNKING (RFC 2920, RFC 3030), `RSET`, `MAIL`, `RCPT`, `BDAT <size>
//!   LAST` and the message itself go in one write, and every reply comes back in one read: one
//!   round trip a message. `BDAT` carries its length, so the server reads (and throws away) the
//!   bytes even when it refused the envelope, and the conversation never goes out of step;
//! - with PIPELINING alone, `RSET`, `MAIL`, `RCPT` and `DATA` go in one write and the
//!   dot-stuffed body with its final `.` in a second, once `DATA` was answered: two round trips;
//! - without it, one write per command and one for the body.
//!
//! Each write follows a read of the server's reply, so TCP never holds a write back waiting for
//! an acknowledgement (Nagle), which made the `\r\n.\r\n` lettre writes on its own wait for
//! the receiver's delayed ACK (~40 ms a message).
//!
//! A connection goes back to the pool only after the server accepted a message on it; any
//! failure drops it. A reused connection starts with `RSET`. If it turns out to be gone (the
//! server closed it while idle, or answers 421) before the body was written, the server cannot
//! have taken the message, so it is sent once more on a fresh connection; a failure after the
//! body was written is reported as is (the server may have the message: sending it again here
//! could deliver it twice). With `BDAT` the body goes with the commands, so a connection that
//! fails without a reply may have carried the message (a pipelining server may hold its replies
//! back until it has read everything): it is reported as is, except a `421` answer to `RSET`
//! (the server is closing and took nothing after it). As servers drop connections that sat idle,
//! a connection idle for `CHUNKING_MAX_IDLE` or more sends its next message with `DATA`, whose
//! failure before the body still means "not sent, try a fresh connection".

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Ehlo, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};

/// Idle connections kept at most; more than this many concurrent senders open and close their
/// own.
const MAX_IDLE: usize = 64;

/// An idle connection older than this is closed rather than reused: servers drop idle clients
/// after a few minutes (RFC 5321 asks them to wait at least five), and a reused connection the
/// server already dropped costs a failed round trip.
const MAX_IDLE_TIME: Duration = Duration::from_secs(30);

/// Messages carried by one connection before it is closed and a fresh one opened, below the
/// per-connection limits common servers set.
const MAX_MESSAGES_PER_CONNECTION: u32 = 1000;

/// A connection idle this long may have been dropped by the server: its next message goes with
/// `DATA` (body after the replies) rather than `BDAT` (body with the commands), so that finding
/// it gone leaves the message unsent and free to go on a fresh connection at once.
const CHUNKING_MAX_IDLE: Duration = Duration::from_secs(1);

/// How to reach the server.
pub(super) struct Connector {
    pub host: String,
    pub port: u16,
    pub timeout: Duration,
    /// TLS from the first byte (`tls`): the parameters; `STARTTLS` (required): the parameters.
    pub implicit_tls: Option<TlsParameters>,
    pub starttls: Option<TlsParameters>,
    pub credentials: Option<Credentials>,
}

/// One open, greeted (and, when configured, authenticated) connection.
pub(super) struct Session {
    conn: SmtpConnection,
    pipelining: bool,
    /// The server offers CHUNKING (`BDAT`) as well as PIPELINING.
    chunking: bool,
    /// When it last carried a message (or was opened).
    last_used: Instant,
    /// Messages the server accepted on it; 0 on a fresh connection (no `RSET` needed).
    carried: u32,
}

/// Why a message did not go.
pub(super) enum TransmitError {
    /// Before the body was written: the server cannot have taken the message. `gone` when the
    /// connection itself failed (no reply, or 421) rather than the server refusing the message;
    /// `awaiting_body` when the server accepted `DATA` all the same (pipelined after a refusal)
    /// and now takes whatever comes as the message: then not even a `QUIT` may follow.
    NotSent {
        error: SmtpError,
        gone: bool,
        awaiting_body: bool,
    },
    /// The body was written (or partly): the server may have the message. `gone` as above.
    Unsure { error: SmtpError, gone: bool },
    /// The message needs an extension the server does not offer.
    Unsupported(&'static str),
}

impl Connector {
    /// Connects, greets, upgrades to TLS and authenticates as configured.
    pub fn open(&self) -> Result<Session, SmtpError> {
        let hello = ClientId::default();
        let mut conn = SmtpConnection::connect(
            (self.host.as_str(), self.port),
            Some(self.timeout),
            &hello,
            self.implicit_tls.as_ref(),
            None,
        )?;
        if let Some(tls) = &self.starttls {
            // Fails without sending anything when the server does not offer STARTTLS.
            conn.starttls(tls, &hello)?;
        }
        // lettre keeps only the extensions it knows from its EHLO; ask once more to learn
        // whether the server takes pipelined commands (before AUTH, which a second EHLO
        // could undo).
        let ehlo = conn.command(Ehlo::new(hello))?;
        let offers = |keyword: &str| {
            ehlo.message().any(|line| {
                line.split_whitespace()
                    .next()
                    .is_some_and(|word| word.eq_ignore_ascii_case(keyword))
            })
        };
        let pipelining = offers("PIPELINING");
        let chunking = pipelining && offers("CHUNKING");
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)?;
        }
        Ok(Session {
            conn,
            pipelining,
            chunking,
            last_used: Instant::now(),
            carried: 0,
        })
    }
}

/// A command or a body, written as is.
struct Raw<'a>(&'a str);

impl fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Session {
    /// Hands one message over: `data` is the body, dot-stuffed and ending with `\r\n.\r\n`
    /// (`to_data`). On `Err` the session must be dropped.
    pub fn transmit(&mut self, envelope: &Envelope, message: &Body) -> Result<(), TransmitError> {
        let result = if self.chunking && self.last_used.elapsed() < CHUNKING_MAX_IDLE {
            self.transmit_chunked(envelope, message)
        } else {
            self.transmit_data(envelope, &message.data())
        };
        self.last_used = Instant::now();
        result
    }

    /// Pipelined commands, then the dot-stuffed body after `DATA` was answered.
    fn transmit_data(&mut self, envelope: &Envelope, data: &str) -> Result<(), TransmitError> {
        let commands = self.commands(envelope, data.is_ascii(), "DATA\r\n".to_owned())?;
        if self.pipelining {
            self.pipelined(&commands)?;
        } else {
            for (index, command) in commands.iter().enumerate() {
                if let Err(error) = self.conn.command(Raw(command)) {
                    let gone = is_gone(&error) || (index == 0 && self.carried > 0);
                    return Err(TransmitError::NotSent {
                        error,
                        gone,
                        awaiting_body: false,
                    });
                }
            }
        }
        self.conn.command(Raw(data)).map_err(|error| {
            let gone = is_gone(&error);
            TransmitError::Unsure { error, gone }
        })?;
        self.carried += 1;
        Ok(())
    }

    /// The commands and the message in one write (`BDAT <size> LAST` after the envelope), then
    /// every reply. The answer to `BDAT` is the answer; before it, the first refusal says why.
    /// A reused connection whose `RSET` is answered 421 was closing before this message
    /// (`NotSent`); any other failed connection may have carried it (`Unsure`).
    fn transmit_chunked(
        &mut self,
        envelope: &Envelope,
        message: &Body,
    ) -> Result<(), TransmitError> {
        let text = message.text();
        // BDAT counts octets: the length of the UTF-8 text.
        let last = format!("BDAT {} LAST\r\n", text.len());
        let commands = self.commands(envelope, message.is_ascii(), last)?;
        let mut write =
            String::with_capacity(commands.iter().map(String::len).sum::<usize>() + text.len());
        for command in &commands {
            write.push_str(command);
        }
        write.push_str(text);
        let Replies {
            first_error,
            last_accepted: taken,
        } = self.exchange(&write, commands.len());
        // The answer to `BDAT … LAST` is the answer about the message, whatever came before
        // (a refused `RSET` followed by an accepted transaction still delivered it).
        if taken {
            self.carried += 1;
            return Ok(());
        }
        let reset = self.carried > 0;
        match first_error {
            Some((0, error)) if reset && error.status().is_some() && is_gone(&error) => {
                Err(TransmitError::NotSent {
                    error,
                    gone: true,
                    awaiting_body: false,
                })
            }
            Some((_, error)) if is_gone(&error) => Err(TransmitError::Unsure { error, gone: true }),
            // A refusal of the envelope: the server read the chunk and threw it away.
            Some((index, error)) if index + 1 < commands.len() => Err(TransmitError::NotSent {
                error,
                gone: false,
                awaiting_body: false,
            }),
            Some((_, error)) => Err(TransmitError::Unsure { error, gone: false }),
            // Not reached: without a positive last reply there was an error.
            None => Err(TransmitError::Unsupported("the server did not answer BDAT")),
        }
    }

    /// `RSET` (on a reused connection), `MAIL`, one `RCPT` per recipient, then `last` (`DATA`,
    /// or `BDAT` with the message's size).
    fn commands(
        &self,
        envelope: &Envelope,
        ascii: bool,
        last: String,
    ) -> Result<Vec<String>, TransmitError> {
        let mut parameters = Vec::new();
        let non_ascii = envelope
            .from()
            .into_iter()
            .chain(envelope.to())
            .any(|address: &lettre::Address| !AsRef::<str>::as_ref(address).is_ascii());
        if non_ascii {
            if !self
                .conn
                .server_info()
                .supports_feature(Extension::SmtpUtfEight)
            {
                return Err(TransmitError::Unsupported(
                    "the address is not ASCII and the server does not offer SMTPUTF8",
                ));
            }
            parameters.push(MailParameter::SmtpUtfEight);
        }
        if !ascii {
            if !self
                .conn
                .server_info()
                .supports_feature(Extension::EightBitMime)
            {
                return Err(TransmitError::Unsupported(
                    "the message is not ASCII and the server does not offer 8BITMIME",
                ));
            }
            parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let mut commands = Vec::with_capacity(3 + envelope.to().len());
        if self.carried > 0 {
            commands.push(Rset.to_string());
        }
        commands.push(Mail::new(envelope.from().cloned(), parameters).to_string());
        for to in envelope.to() {
            commands.push(Rcpt::new(to.clone(), Vec::new()).to_string());
        }
        commands.push(last);
        Ok(commands)
    }

    /// All commands in one write, then every reply. The first refusal is the answer; a `DATA`
    /// accepted after an earlier refusal leaves the server waiting for a body that must not
    /// come, which dropping the connection settles.
    fn pipelined(&mut self, commands: &[String]) -> Result<(), TransmitError> {
        let reset = self.carried > 0;
        let Replies {
            first_error,
            last_accepted: awaiting_body,
        } = self.exchange(&commands.concat(), commands.len());
        match first_error {
            None => Ok(()),
            Some((index, error)) => {
                let gone = is_gone(&error) || (reset && index == 0);
                Err(TransmitError::NotSent {
                    error,
                    gone,
                    awaiting_body,
                })
            }
        }
    }

    /// Writes `write` (`count` pipelined commands, and for `BDAT` the message) at once, then
    /// reads a reply for each command until they are all read or the connection is gone.
    fn exchange(&mut self, write: &str, count: usize) -> Replies {
        let mut replies = Replies {
            first_error: None,
            last_accepted: false,
        };
        let mut reply = self.conn.command(Raw(write)).map(drop);
        for index in 0..count {
            if index > 0 {
                reply = self.conn.read_response().map(drop);
            }
            match reply {
                Ok(()) => replies.last_accepted = index + 1 == count,
                Err(error) => {
                    let broken = is_gone(&error);
                    if replies.first_error.is_none() {
                        replies.first_error = Some((index, error));
                    }
                    if broken {
                        break;
                    }
                }
            }
            reply = Ok(());
        }
        replies
    }

    /// Ends the session: with `QUIT` when `polite` (the server is answering), else by closing
    /// the socket (nothing waits on a server that may be gone).
    pub fn close(mut self, polite: bool) {
        if polite {
            self.conn.abort();
        }
    }

    /// Whether the connection may carry another message.
    fn reusable(&self) -> bool {
        !self.conn.has_broken() && self.carried < MAX_MESSAGES_PER_CONNECTION
    }
}

/// The replies to one pipelined write (`Session::exchange`).
struct Replies {
    /// The first refusal or failure, with the index of the command it answered.
    first_error: Option<(usize, SmtpError)>,
    /// Whether the last command's reply was read and positive.
    last_accepted: bool,
}

/// The connection failed rather than the server refusing: no reply could be read, or the
/// server is closing the connection (421).
fn is_gone(error: &SmtpError) -> bool {
    error.status().is_none_or(|code| u16::from(code) == 421)
}

/// A message as the server is to receive it: its bytes and the `\r\n` that ends its last line
/// (the line end before `DATA`'s final `.`, which the server keeps), as text.
pub(super) struct Body {
    text: String,
}

impl Body {
    /// `None` when the message is not UTF-8 (lettre's output is ASCII, so never in practice).
    pub fn new(mut message: Vec<u8>) -> Option<Body> {
        message.extend_from_slice(b"\r\n");
        String::from_utf8(message).ok().map(|text| Body { text })
    }

    /// What `BDAT` carries.
    fn text(&self) -> &str {
        &self.text
    }

    fn is_ascii(&self) -> bool {
        self.text.is_ascii()
    }

    /// What `DATA` carries: dot-stuffed, ending with `\r\n.\r\n`.
    fn data(&self) -> String {
        let message = self.text.strip_suffix("\r\n").unwrap_or(&self.text);
        // Stuffing inserts ASCII dots only, so UTF-8 stays UTF-8 and nothing is replaced.
        String::from_utf8_lossy(&to_data(message.as_bytes())).into_owned()
    }
}

/// The DATA section for `message`: dot-stuffed (a line starting with `.` gets another) and
/// ended with `\r\n.\r\n`, as lettre writes it.
pub(super) fn to_data(message: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(message.len() + message.len() / 64 + 8);
    let mut line_start = true;
    let mut after_cr = false;
    for &byte in message {
        if line_start && byte == b'.' {
            data.push(b'.');
        }
        data.push(byte);
        line_start = after_cr && byte == b'\n';
        after_cr = byte == b'\r';
    }
    data.extend_from_slice(b"\r\n.\r\n");
    data
}

/// Idle connections, most recently used first out.
pub(super) struct Pool {
    idle: Mutex<Vec<(Session, Instant)>>,
}

impl Pool {
    pub fn new() -> Pool {
        Pool {
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The most recently used idle connection young enough to reuse; older ones are closed.
    pub fn take(&self) -> Option<Session> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some((session, since)) = idle.pop() {
            if since.elapsed() < MAX_IDLE_TIME {
                return Some(session);
            }
            // Closed without QUIT: the server may be gone, and nothing waits on a reply.
            drop(session);
        }
        None
    }

    /// Keeps `session` for the next message, if it can carry one and there is room.
    pub fn put(&self, session: Session) {
        if !session.reusable() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push((session, Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bdat_and_data_deliver_the_same_bytes() {
        for message in [&b"Hi\r\n.dot\r\n"[..], b"no line end", b"caf\xc3\xa9\r\n"] {
            let body = Body::new(message.to_vec()).unwrap();
            // DATA: the message, its last line's end, then the dot (stuffing undone by the
            // server); BDAT: the message and that line end, as is.
            assert_eq!(body.data().into_bytes(), to_data(message));
            let mut expected = message.to_vec();
            expected.extend_from_slice(b"\r\n");
            assert_eq!(body.text().as_bytes(), expected.as_slice());
        }
        assert!(Body::new(vec![0xff]).is_none());
    }

    #[test]
    fn data_is_dot_stuffed_and_terminated_like_lettre() {
        let cases: [(&[u8], &[u8]); 5] = [
            (b"Hello\r\n", b"Hello\r\n\r\n.\r\n"),
            (
                b".leading\r\nmid.dle\r\n.\r\n",
                b"..leading\r\nmid.dle\r\n..\r\n\r\n.\r\n",
            ),
            (b"a\r\n..two\r\nb", b"a\r\n...two\r\nb\r\n.\r\n"),
            (b"", b"\r\n.\r\n"),
            (b"bare\n.dot", b"bare\n.dot\r\n.\r\n"),
        ];
        for (message, expected) in cases {
            assert_eq!(
                to_data(message),
                expected,
                "{}",
                String::from_utf8_lossy(message)
            );
        }
    }
}

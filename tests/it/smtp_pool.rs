//! The smtp provider's connection reuse against a scripted SMTP server on 127.0.0.1: one
//! connection carries many messages with `RSET` between them, pipelined when the server offers
//! PIPELINING; a connection the server dropped is replaced and the message still arrives exactly
//! once; a connection lost after the body is never used to send that message again. With
//! CHUNKING as well, a message is one write (`BDAT <size> LAST` and the message itself).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crier::delivery::providers::smtp::SmtpProvider;
use crier::delivery::settings::{SmtpSecurity, SmtpSettings};
use crier::delivery::{Disposition, EmailOut, Outgoing, Provider};

/// How the scripted server behaves.
#[derive(Clone, Copy, Default)]
struct Script {
    /// Offer PIPELINING in the EHLO reply.
    pipelining: bool,
    /// Offer CHUNKING (`BDAT`) too.
    chunking: bool,
    /// Close the connection right after accepting a message (as if it had sat idle too long).
    close_after_message: bool,
    /// Answer `RSET` with 421 and close.
    refuse_rset: bool,
    /// Take the body of the n-th message (counting from 0 across connections), then drop the
    /// connection without replying.
    vanish_after_body: Option<usize>,
    /// Refuse every recipient (550).
    refuse_rcpt: bool,
    /// After a refused recipient, accept `DATA` all the same (354) instead of 503, as some
    /// servers do with pipelined commands.
    data_after_refusal: bool,
}

/// What the server saw.
#[derive(Debug, Default)]
struct Seen {
    connections: usize,
    /// Every read, as text, with the connection it came on.
    reads: Vec<(usize, String)>,
    /// The commands, in order, with the connection they came on.
    commands: Vec<(usize, String)>,
    /// The `X-Crier-Message-Id` of every body received, accepted or not.
    bodies: Vec<String>,
    /// Every `BDAT` chunk, as received.
    chunks: Vec<String>,
    /// Bytes received in DATA mode on a connection that ended before the final dot.
    unfinished: Vec<String>,
    /// Connections the server is done with.
    ended: usize,
}

fn start(script: Script) -> (u16, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = Arc::clone(&seen);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let connection = {
                let mut seen = shared.lock().unwrap();
                seen.connections += 1;
                seen.connections
            };
            let seen = Arc::clone(&shared);
            thread::spawn(move || {
                serve(stream, connection, script, &seen);
                seen.lock().unwrap().ended += 1;
            });
        }
    });
    (port, seen)
}

/// Records a message body received (by `DATA` or `BDAT`) and answers it as the script says.
/// Returns false when the connection is to end here.
fn accept_body(
    body: &str,
    script: &Script,
    seen: &Mutex<Seen>,
    stream: &mut TcpStream,
    replies: &mut String,
) -> bool {
    let id = body
        .lines()
        .find_map(|line| line.strip_prefix("X-Crier-Message-Id: "))
        .unwrap_or("?")
        .to_owned();
    let index = {
        let mut seen = seen.lock().unwrap();
        seen.bodies.push(id);
        seen.bodies.len() - 1
    };
    if script.vanish_after_body == Some(index) {
        return false;
    }
    replies.push_str("250 OK queued\r\n");
    if script.close_after_message {
        let _ = stream.write_all(replies.as_bytes());
        return false;
    }
    true
}

fn serve(mut stream: TcpStream, connection: usize, script: Script, seen: &Mutex<Seen>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(b"220 scripted ESMTP\r\n").unwrap();
    let mut pending = String::new();
    let mut in_data = false;
    // The bytes of a `BDAT` chunk still to come, and whether it is the last.
    let mut chunk_left: Option<usize> = None;
    let mut refused = false;
    let mut chunk = [0u8; 65536];
    loop {
        let read = stream.read(&mut chunk).unwrap_or(0);
        if read == 0 {
            if in_data && !pending.is_empty() {
                seen.lock().unwrap().unfinished.push(pending);
            }
            return;
        }
        let text = String::from_utf8_lossy(&chunk[..read]).into_owned();
        seen.lock().unwrap().reads.push((connection, text.clone()));
        pending.push_str(&text);
        let mut replies = String::new();
        loop {
            if let Some(size) = chunk_left {
                if pending.len() < size {
                    break;
                }
                let body: String = pending.drain(..size).collect();
                chunk_left = None;
                if refused {
                    replies.push_str("554 No valid recipients\r\n");
                    continue;
                }
                seen.lock().unwrap().chunks.push(body.clone());
                if !accept_body(&body, &script, seen, &mut stream, &mut replies) {
                    return;
                }
                continue;
            }
            if in_data {
                let Some(end) = pending.find("\r\n.\r\n") else {
                    break;
                };
                let body: String = pending.drain(..end + 5).collect();
                in_data = false;
                if !accept_body(&body, &script, seen, &mut stream, &mut replies) {
                    return;
                }
                continue;
            }
            let Some(end) = pending.find("\r\n") else {
                break;
            };
            let line: String = pending.drain(..end + 2).collect();
            let verb = line
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            seen.lock()
                .unwrap()
                .commands
                .push((connection, verb.clone()));
            match verb.as_str() {
                "EHLO" if script.chunking => {
                    replies.push_str(
                        "250-scripted\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME\r\n",
                    );
                }
                "EHLO" if script.pipelining => {
                    replies.push_str("250-scripted\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
                }
                "EHLO" => replies.push_str("250-scripted\r\n250 8BITMIME\r\n"),
                "RSET" if script.refuse_rset => {
                    replies.push_str("421 Idle too long, closing\r\n");
                    let _ = stream.write_all(replies.as_bytes());
                    return;
                }
                "RCPT" if script.refuse_rcpt => {
                    refused = true;
                    replies.push_str("550 No such user\r\n");
                }
                "BDAT" => {
                    // `BDAT <size> LAST`: the reply comes once the chunk is read.
                    let size = line.split_whitespace().nth(1).unwrap_or("0");
                    chunk_left = Some(size.parse().unwrap());
                }
                "DATA" if script.refuse_rcpt && !script.data_after_refusal => {
                    replies.push_str("503 No valid recipients\r\n");
                }
                "DATA" => {
                    replies.push_str("354 Go ahead\r\n");
                    in_data = true;
                }
                "QUIT" => {
                    replies.push_str("221 Bye\r\n");
                    let _ = stream.write_all(replies.as_bytes());
                    return;
                }
                _ => replies.push_str("250 OK\r\n"),
            }
        }
        if !replies.is_empty() && stream.write_all(replies.as_bytes()).is_err() {
            return;
        }
    }
}

fn provider(port: u16) -> SmtpProvider {
    let settings = SmtpSettings {
        host: "127.0.0.1".to_owned(),
        port,
        security: SmtpSecurity::None,
        credentials: None,
    };
    SmtpProvider::new(&settings, Duration::from_secs(2)).unwrap()
}

fn send(provider: &SmtpProvider, message_id: &str) -> Result<(), crier::delivery::Failure> {
    let email = EmailOut {
        message_id,
        to: "ada@example.org",
        from: "Crier <noreply@example.com>",
        subject: "Hello",
        text: Some("One line.\n.A line that starts with a dot.\nThe end."),
        html: None,
        list_unsubscribe: None,
        dkim: None,
    };
    provider.send(&Outgoing::Email(email)).map(drop)
}

fn verbs(seen: &Seen) -> Vec<&str> {
    seen.commands
        .iter()
        .map(|(_, verb)| verb.as_str())
        .collect()
}

#[test]
fn one_connection_carries_many_messages_with_rset_between() {
    for pipelining in [false, true] {
        let (port, seen) = start(Script {
            pipelining,
            ..Script::default()
        });
        let provider = provider(port);
        for n in 0..3 {
            send(&provider, &format!("msg_{n}")).unwrap();
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.connections, 1, "pipelining {pipelining}");
        assert_eq!(seen.bodies, ["msg_0", "msg_1", "msg_2"]);
        // Two EHLOs: lettre's, and ours that learns about PIPELINING.
        assert_eq!(
            verbs(&seen),
            [
                "EHLO", "EHLO", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT", "DATA", "RSET",
                "MAIL", "RCPT", "DATA"
            ],
            "pipelining {pipelining}"
        );
        // The body and its final dot leave in one write, so nothing waits for an ACK between
        // them; with PIPELINING the commands of a message leave in one write too.
        let bodies: Vec<&String> = seen
            .reads
            .iter()
            .map(|(_, text)| text)
            .filter(|text| text.contains("X-Crier-Message-Id"))
            .collect();
        assert_eq!(bodies.len(), 3, "{:?}", seen.reads);
        for body in bodies {
            assert!(body.ends_with("\r\n.\r\n"), "{body}");
            // Dot-stuffed: the line starting with a dot got another one.
            assert!(
                body.contains("\r\n..A line that starts with a dot."),
                "{body}"
            );
        }
        if pipelining {
            let groups: Vec<&String> = seen
                .reads
                .iter()
                .map(|(_, text)| text)
                .filter(|text| text.starts_with("MAIL") || text.starts_with("RSET"))
                .collect();
            assert_eq!(groups.len(), 3, "{:?}", seen.reads);
            assert!(
                groups[0].starts_with(
                    "MAIL FROM:<noreply@example.com>\r\nRCPT TO:<ada@example.org>\r\nDATA\r\n"
                ),
                "{}",
                groups[0]
            );
            for group in &groups[1..] {
                assert!(group.starts_with("RSET\r\nMAIL FROM:"), "{group}");
                assert!(group.ends_with("DATA\r\n"), "{group}");
            }
        }
    }
}

#[test]
fn a_connection_the_server_closed_is_replaced_and_the_message_arrives_once() {
    for pipelining in [false, true] {
        let (port, seen) = start(Script {
            pipelining,
            close_after_message: true,
            ..Script::default()
        });
        let provider = provider(port);
        send(&provider, "msg_first").unwrap();
        // The pooled connection is closed by now; the next message finds out at its RSET.
        send(&provider, "msg_second").unwrap();
        send(&provider, "msg_third").unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.bodies, ["msg_first", "msg_second", "msg_third"]);
        assert_eq!(seen.connections, 3, "pipelining {pipelining}");
    }
}

#[test]
fn a_connection_answering_421_is_replaced_and_the_message_arrives_once() {
    let (port, seen) = start(Script {
        pipelining: true,
        refuse_rset: true,
        ..Script::default()
    });
    let provider = provider(port);
    send(&provider, "msg_first").unwrap();
    send(&provider, "msg_second").unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.bodies, ["msg_first", "msg_second"]);
    assert_eq!(seen.connections, 2);
}

#[test]
fn a_message_whose_body_went_out_is_not_sent_again_on_another_connection() {
    let (port, seen) = start(Script {
        pipelining: true,
        vanish_after_body: Some(1),
        ..Script::default()
    });
    let provider = provider(port);
    send(&provider, "msg_first").unwrap();
    // The server takes the body and drops the connection without a word: it may have the
    // message, so the provider reports a retryable failure instead of sending it again.
    let failure = send(&provider, "msg_unsure").unwrap_err();
    assert_eq!(failure.disposition, Disposition::Retryable, "{failure:?}");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.bodies, ["msg_first", "msg_unsure"]);
        assert_eq!(seen.connections, 1);
    }
    // The broken connection is gone from the pool: the next message opens a fresh one.
    send(&provider, "msg_next").unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.bodies, ["msg_first", "msg_unsure", "msg_next"]);
    assert_eq!(seen.connections, 2);
}

#[test]
fn concurrent_senders_each_get_a_connection_and_every_message_arrives_once() {
    let (port, seen) = start(Script {
        pipelining: true,
        ..Script::default()
    });
    let provider = provider(port);
    thread::scope(|scope| {
        for sender in 0..4 {
            let provider = &provider;
            scope.spawn(move || {
                for n in 0..25 {
                    send(provider, &format!("msg_{sender}_{n}")).unwrap();
                }
            });
        }
    });
    let seen = seen.lock().unwrap();
    let mut bodies = seen.bodies.clone();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 100);
    assert_eq!(seen.bodies.len(), 100);
    assert!(
        seen.connections <= 4,
        "{} connections for 4 senders",
        seen.connections
    );
}

/// Sends one message the server refuses at `RCPT`: the failure is final (`smtp_550`), and the
/// failed connection is closed, not pooled — the server sees its end.
fn a_refused_recipient_is_final_and_its_connection_ends(port: u16, seen: &Mutex<Seen>) {
    let provider = provider(port);
    let failure = send(&provider, "msg_nobody").unwrap_err();
    assert_eq!(
        (failure.disposition, failure.code.as_str()),
        (Disposition::Final, "smtp_550"),
        "{failure:?}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().ended < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the connection stayed open"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_refused_recipient_is_final_and_no_body_follows_even_if_data_was_accepted() {
    for data_after_refusal in [false, true] {
        let (port, seen) = start(Script {
            pipelining: true,
            refuse_rcpt: true,
            data_after_refusal,
            ..Script::default()
        });
        a_refused_recipient_is_final_and_its_connection_ends(port, &seen);
        let seen = seen.lock().unwrap();
        assert!(seen.bodies.is_empty());
        if data_after_refusal {
            // The server waits for a body: the connection is closed without a word, since
            // even a QUIT would be taken as the message.
            assert!(seen.unfinished.is_empty(), "{:?}", seen.unfinished);
            assert!(!verbs(&seen).contains(&"QUIT"));
        } else {
            assert_eq!(verbs(&seen).last(), Some(&"QUIT"));
        }
    }
}

#[test]
fn with_chunking_a_message_is_one_write_and_the_body_goes_as_is() {
    let (port, seen) = start(Script {
        pipelining: true,
        chunking: true,
        ..Script::default()
    });
    let provider = provider(port);
    for n in 0..3 {
        send(&provider, &format!("msg_{n}")).unwrap();
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.connections, 1);
    assert_eq!(seen.bodies, ["msg_0", "msg_1", "msg_2"]);
    assert_eq!(
        verbs(&seen),
        [
            "EHLO", "EHLO", "MAIL", "RCPT", "BDAT", "RSET", "MAIL", "RCPT", "BDAT", "RSET", "MAIL",
            "RCPT", "BDAT"
        ]
    );
    // Each message (envelope, BDAT and the bytes) arrived in one read: one write, one round trip.
    let messages: Vec<&String> = seen
        .reads
        .iter()
        .map(|(_, text)| text)
        .filter(|text| text.contains("X-Crier-Message-Id"))
        .collect();
    assert_eq!(messages.len(), 3, "{:?}", seen.reads);
    assert!(
        messages[0]
            .starts_with("MAIL FROM:<noreply@example.com>\r\nRCPT TO:<ada@example.org>\r\nBDAT ")
    );
    for message in &messages[1..] {
        assert!(message.starts_with("RSET\r\nMAIL FROM:"), "{message}");
    }
    for (chunk, read) in seen.chunks.iter().zip(&messages) {
        // The size announced is the size sent, and the message is not dot-stuffed (nor ended
        // with a dot): the line starting with a dot arrives as written.
        assert!(
            read.contains(&format!("BDAT {} LAST\r\n", chunk.len())),
            "{read}"
        );
        assert!(read.ends_with(chunk.as_str()));
        assert!(
            chunk.contains("\r\n.A line that starts with a dot."),
            "{chunk}"
        );
        // The same bytes as `DATA` delivers: the message and the line end before the final dot.
        assert!(chunk.ends_with("The end.\r\n\r\n"), "{chunk}");
    }
}

#[test]
fn with_chunking_a_dropped_connection_is_replaced_and_a_lost_reply_is_not_resent_from_here() {
    let (port, seen) = start(Script {
        pipelining: true,
        chunking: true,
        close_after_message: true,
        ..Script::default()
    });
    let provider = provider(port);
    send(&provider, "msg_first").unwrap();
    // Closed after each message. A connection idle for a second sends with DATA: the next
    // message finds out at its RSET, before its body, and goes on a fresh connection.
    thread::sleep(Duration::from_millis(1100));
    send(&provider, "msg_second").unwrap();
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.bodies, ["msg_first", "msg_second"]);
        assert_eq!(seen.connections, 2);
    }
    // Right away, BDAT sends the message with its envelope: the connection gone without a reply
    // may have taken it, so it is a retryable failure, never a second copy from here.
    let failure = send(&provider, "msg_third").unwrap_err();
    assert_eq!(failure.disposition, Disposition::Retryable, "{failure:?}");
    send(&provider, "msg_fourth").unwrap();
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.bodies, ["msg_first", "msg_second", "msg_fourth"]);
        assert_eq!(seen.connections, 3);
    }

    // A server answering RSET with 421 is closing and took nothing after it: sent again at once.
    let (port, seen) = start(Script {
        pipelining: true,
        chunking: true,
        refuse_rset: true,
        ..Script::default()
    });
    let provider = self::provider(port);
    send(&provider, "msg_first").unwrap();
    send(&provider, "msg_second").unwrap();
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.bodies, ["msg_first", "msg_second"]);
        assert_eq!(seen.connections, 2);
    }

    let (port, seen) = start(Script {
        pipelining: true,
        chunking: true,
        vanish_after_body: Some(1),
        ..Script::default()
    });
    let provider = self::provider(port);
    send(&provider, "msg_first").unwrap();
    // The server took the message and vanished before its reply: it may have it.
    let failure = send(&provider, "msg_unsure").unwrap_err();
    assert_eq!(failure.disposition, Disposition::Retryable, "{failure:?}");
    send(&provider, "msg_next").unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.bodies, ["msg_first", "msg_unsure", "msg_next"]);
    assert_eq!(seen.connections, 2);
}

#[test]
fn with_chunking_a_refused_recipient_is_final_and_the_session_ends_with_quit() {
    let (port, seen) = start(Script {
        pipelining: true,
        chunking: true,
        refuse_rcpt: true,
        ..Script::default()
    });
    a_refused_recipient_is_final_and_its_connection_ends(port, &seen);
    let seen = seen.lock().unwrap();
    assert!(seen.bodies.is_empty());
    // The chunk's length kept both sides in step: the server read the QUIT as a command.
    assert_eq!(verbs(&seen).last(), Some(&"QUIT"));
}

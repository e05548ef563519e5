//! Live channels over HTTP: the dashboard's SSE feed, the visitor channel the tracker
//! opens with the `x-footfall-live` token, and invitations between them.

mod common;

use common::{CHROME_UA, FIREFOX_UA, Server, assert_json_error};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// A minimal SSE client on a raw socket, so a test can read with timeouts and hang up.
struct Sse {
    reader: BufReader<TcpStream>,
    chunked: bool,
    /// Decoded body bytes not yet split into events.
    pending: String,
    /// A chunk-size line read in part before a timeout.
    size_line: String,
}

impl Sse {
    fn open(s: &Server, path: &str, key: Option<&str>) -> (u16, String, Sse) {
        let mut stream = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
        let auth = key
            .map(|k| format!("Authorization: Bearer {k}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n{auth}\r\n"
        )
        .expect("send request");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !head.ends_with("\r\n\r\n") {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => head.push_str(&line),
                Err(_) if Instant::now() < deadline => {}
                Err(e) => panic!("no response head for {path}: {e}"),
            }
        }
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let lower = head.to_ascii_lowercase();
        let sse = Sse {
            reader,
            chunked: lower.contains("transfer-encoding: chunked"),
            pending: String::new(),
            size_line: String::new(),
        };
        (status, lower, sse)
    }

    /// Reads what arrived (non-blocking beyond the socket timeout).
    fn fill(&mut self) -> bool {
        if self.chunked {
            match self.reader.read_line(&mut self.size_line) {
                Ok(0) => return false,
                Ok(_) if self.size_line.ends_with('\n') => {}
                Ok(_) | Err(_) => return true,
            }
            let size = std::mem::take(&mut self.size_line);
            let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
                return true;
            };
            if n == 0 {
                return false;
            }
            let mut chunk = vec![0u8; n + 2];
            let mut got = 0;
            let deadline = Instant::now() + Duration::from_secs(5);
            while got < chunk.len() && Instant::now() < deadline {
                match self.reader.read(&mut chunk[got..]) {
                    Ok(0) => return false,
                    Ok(k) => got += k,
                    Err(_) => {}
                }
            }
            self.pending.push_str(&String::from_utf8_lossy(&chunk[..n]));
        } else {
            let mut buf = [0u8; 4096];
            match self.reader.read(&mut buf) {
                Ok(0) => return false,
                Ok(k) => self.pending.push_str(&String::from_utf8_lossy(&buf[..k])),
                Err(_) => {}
            }
        }
        true
    }

    /// The next event matching `want`, skipping others; panics after `timeout`.
    fn next(&mut self, timeout: Duration, want: impl Fn(&str, &Value) -> bool) -> (String, Value) {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            while let Some(i) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..i + 2).collect();
                let mut event = "message".to_string();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event:") {
                        event = e.trim().to_string();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim());
                    }
                }
                if data.is_empty() && event == "message" {
                    continue; // keep-alive comment
                }
                let data: Value = serde_json::from_str(&data).unwrap_or(Value::String(data));
                if want(&event, &data) {
                    return (event, data);
                }
                seen.push((event, data));
            }
            assert!(
                Instant::now() < deadline,
                "no matching event within {timeout:?}; saw {seen:?}"
            );
            if !self.fill() {
                panic!("stream ended; saw {seen:?}");
            }
        }
    }

    fn hang_up(self) {
        let _ = self.reader.get_ref().shutdown(Shutdown::Both);
    }
}

fn pageview(s: &Server, domain: &str, path: &str, ua: &str) -> reqwest::blocking::Response {
    let body =
        json!({"n": "pageview", "u": format!("https://{domain}{path}"), "d": domain, "r": null});
    let r = s.post_event(&body.to_string(), ua, Some("203.0.113.50"), "text/plain");
    assert_eq!(r.status().as_u16(), 202);
    r
}

fn live_token(r: &reqwest::blocking::Response) -> Option<String> {
    r.headers()
        .get("x-footfall-live")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn invite(
    s: &Server,
    key: &str,
    site: &str,
    visitor: &str,
    body: &Value,
) -> reqwest::blocking::Response {
    s.http
        .post(s.url(&format!("/api/v1/sites/{site}/live/{visitor}/invite")))
        .bearer_auth(key)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .expect("POST invite")
}

#[test]
fn the_dashboard_invites_a_live_visitor_through_its_channel() {
    let s = Server::start_with_config("[sites.\"live.test\"]\nlive_invites = true\n");
    let key = common::site_with_stats_key(&s, "live.test");
    let quiet_key = common::site_with_stats_key(&s, "quiet.test");

    let (status, head, mut feed) = Sse::open(&s, "/api/v1/sites/live.test/live", Some(&key));
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    let (_, ready) = feed.next(Duration::from_secs(5), |e, _| e == "ready");
    assert_eq!(ready["live_invites"], true);

    // The page view's answer names the channel; sites without invitations get no token.
    let token = live_token(&pageview(&s, "live.test", "/pricing", CHROME_UA)).expect("live token");
    assert_eq!(token.len(), 32);
    assert_eq!(
        live_token(&pageview(&s, "quiet.test", "/", CHROME_UA)),
        None
    );

    let (_, arrival) = feed.next(Duration::from_secs(10), |e, _| e == "arrival");
    assert_eq!(arrival["page"], "/pricing");
    assert_eq!(arrival["browser"], "Chrome");
    let visitor = arrival["visitor"].as_str().expect("visitor id").to_string();

    // Not reachable before the tracker opens its channel.
    assert_json_error(
        "no channel yet",
        invite(&s, &key, "live.test", &visitor, &json!({"text": "Hi"})),
        404,
    );

    let (status, _, mut channel) = Sse::open(&s, &format!("/api/live/visitor?t={token}"), None);
    assert_eq!(status, 200);
    channel.next(Duration::from_secs(5), |e, _| e == "ready");
    let (_, reachable) = feed.next(Duration::from_secs(5), |e, _| e == "channel");
    assert_eq!(
        (
            reachable["visitor"].as_str(),
            reachable["invitable"].as_bool()
        ),
        (Some(visitor.as_str()), Some(true))
    );

    let r = invite(
        &s,
        &key,
        "live.test",
        &visitor,
        &json!({"text": "Want a quick demo?", "url": "https://meet.example.com/demo", "label": "Join"}),
    );
    assert_eq!(r.status().as_u16(), 202);
    let answer: Value = r.json().expect("json");
    assert_eq!(answer["delivered"], 1);
    let (_, invitation) = channel.next(Duration::from_secs(5), |e, _| e == "invite");
    assert_eq!(
        invitation,
        json!({"text": "Want a quick demo?", "url": "https://meet.example.com/demo", "label": "Join"})
    );

    // Another page view of the same visitor is a `page` event; another visitor arrives.
    pageview(&s, "live.test", "/docs", CHROME_UA);
    let (_, moved) = feed.next(Duration::from_secs(10), |e, _| e == "page");
    assert_eq!(
        (moved["visitor"].as_str(), moved["page"].as_str()),
        (Some(visitor.as_str()), Some("/docs"))
    );
    pageview(&s, "live.test", "/", FIREFOX_UA);
    let (_, other) = feed.next(Duration::from_secs(10), |e, _| e == "arrival");
    assert_ne!(other["visitor"], json!(visitor));
    assert_eq!(other["invitable"], false);

    // Errors.
    assert_json_error(
        "not live",
        invite(
            &s,
            &key,
            "live.test",
            "00000000000000ff",
            &json!({"text": "Hi"}),
        ),
        404,
    );
    assert_json_error(
        "not a visitor id",
        invite(&s, &key, "live.test", "bob", &json!({"text": "Hi"})),
        404,
    );
    assert_json_error(
        "javascript: URL",
        invite(
            &s,
            &key,
            "live.test",
            &visitor,
            &json!({"text": "Hi", "url": "javascript:alert(1)"}),
        ),
        400,
    );
    assert_json_error(
        "invitations off",
        invite(
            &s,
            &quiet_key,
            "quiet.test",
            &visitor,
            &json!({"text": "Hi"}),
        ),
        409,
    );
    assert_json_error(
        "another site's key",
        invite(
            &s,
            &quiet_key,
            "live.test",
            &visitor,
            &json!({"text": "Hi"}),
        ),
        403,
    );
    let anonymous = s
        .http
        .get(s.url("/api/v1/sites/live.test/live"))
        .send()
        .expect("GET feed");
    assert_json_error("feed without a key", anonymous, 401);
    let unknown = s
        .http
        .get(s.url("/api/live/visitor?t=0123456789abcdef0123456789abcdef"))
        .send()
        .expect("GET channel");
    assert_json_error("unknown token", unknown, 404);
    let missing = s
        .http
        .get(s.url("/api/live/visitor"))
        .send()
        .expect("GET channel");
    assert_json_error("no token", missing, 400);

    // The visitor leaves: the channel closes, then after a grace period they depart.
    channel.hang_up();
    let (_, closed) = feed.next(Duration::from_secs(20), |e, d| {
        e == "channel" && d["visitor"] == json!(visitor)
    });
    assert_eq!(closed["invitable"], false);
    feed.next(Duration::from_secs(30), |e, d| {
        e == "departure" && d["visitor"] == json!(visitor)
    });
    feed.hang_up();
}

#[test]
fn open_streams_do_not_hold_up_shutdown() {
    let mut s = Server::start();
    let key = common::site_with_stats_key(&s, "live.test");
    let (status, _, mut feed) = Sse::open(&s, "/api/v1/sites/live.test/live", Some(&key));
    assert_eq!(status, 200);
    feed.next(Duration::from_secs(5), |e, _| e == "ready");
    let bearer = format!("Bearer {key}");
    let (mut socket, _) =
        ws_open(&s, "live.test", &[("authorization", &bearer)]).expect("WebSocket opens");
    ws_next(&mut socket, Duration::from_secs(5), "ready");
    let started = Instant::now();
    s.stop();
    // SIGTERM ends the streams, so graceful shutdown finishes at once instead of
    // waiting for the dashboard to hang up (Server::stop would SIGKILL after 15 s).
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}; log:\n{}",
        started.elapsed(),
        s.log()
    );
    assert!(s.log().contains("footfall is listening"));
    let deadline = Instant::now() + Duration::from_secs(2);
    while feed.fill() {
        assert!(Instant::now() < deadline, "the stream did not end");
    }
    // The WebSocket is closed too, with a close frame saying why when it gets out.
    loop {
        match socket.read() {
            Ok(tungstenite::Message::Close(frame)) => {
                if let Some(frame) = frame {
                    assert_eq!(u16::from(frame.code), 1001);
                }
                break;
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                assert!(Instant::now() < deadline, "the WebSocket did not end");
            }
            Err(_) => break,
        }
    }
}

#[test]
fn visitors_on_the_feed_are_still_there_after_a_restart() {
    let mut s = Server::start();
    let key = common::site_with_stats_key(&s, "restart-live.test");
    let (_, _, mut feed) = Sse::open(&s, "/api/v1/sites/restart-live.test/live", Some(&key));
    feed.next(Duration::from_secs(5), |e, _| e == "ready");
    assert_eq!(
        pageview(&s, "restart-live.test", "/docs", CHROME_UA)
            .status()
            .as_u16(),
        202
    );
    let (_, arrival) = feed.next(Duration::from_secs(10), |e, _| e == "arrival");
    feed.hang_up();
    s.wait_for_metric(
        &key,
        "restart-live.test",
        &json!("day"),
        "pageviews",
        1.0,
        Duration::from_secs(30),
    );
    s.kill9();
    s.restart();
    // A feed opened after the restart lists the visitor as already there, with the
    // visit's attributes from the store.
    let (_, _, mut feed) = Sse::open(&s, "/api/v1/sites/restart-live.test/live", Some(&key));
    let (_, ready) = feed.next(Duration::from_secs(5), |e, _| e == "ready");
    assert_eq!(ready["visitors"], 1, "{ready}");
    let (_, again) = feed.next(Duration::from_secs(5), |e, _| e == "arrival");
    for field in ["visitor", "page", "browser", "os", "device", "source"] {
        assert_eq!(
            again[field], arrival[field],
            "{field}: {again} vs {arrival}"
        );
    }
    feed.hang_up();
}

type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

/// Opens the live feed as a WebSocket with extra request headers; the handshake's HTTP
/// answer on failure.
fn ws_open(
    s: &Server,
    site: &str,
    headers: &[(&str, &str)],
) -> Result<(Socket, tungstenite::handshake::client::Response), tungstenite::Error> {
    use tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://127.0.0.1:{}/api/v1/sites/{site}/live", s.port)
        .into_client_request()
        .expect("request");
    for (name, value) in headers {
        request.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            value.parse().expect("value"),
        );
    }
    let (socket, response) = tungstenite::connect(request)?;
    if let tungstenite::stream::MaybeTlsStream::Plain(tcp) = socket.get_ref() {
        tcp.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
    }
    Ok((socket, response))
}

fn selected_protocol(response: &tungstenite::handshake::client::Response) -> Option<&str> {
    response
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
}

/// The next JSON message of type `kind` (skipping others); panics after `timeout`.
fn ws_next(socket: &mut Socket, timeout: Duration, kind: &str) -> Value {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "no {kind} message within {timeout:?}; saw {seen:?}"
        );
        match socket.read() {
            Ok(tungstenite::Message::Text(text)) => {
                let msg: Value = serde_json::from_str(text.as_str()).expect("JSON message");
                if msg["type"] == kind {
                    return msg;
                }
                seen.push(msg);
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("socket closed ({e}); saw {seen:?}"),
        }
    }
}

fn ws_send(socket: &mut Socket, command: Value) {
    socket
        .send(tungstenite::Message::Text(command.to_string().into()))
        .expect("send command");
}

fn handshake_error(
    r: Result<(Socket, tungstenite::handshake::client::Response), tungstenite::Error>,
) -> (u16, Value) {
    match r {
        Err(tungstenite::Error::Http(resp)) => {
            let body = resp.body().as_deref().unwrap_or_default();
            (
                resp.status().as_u16(),
                serde_json::from_slice(body).expect("JSON error body"),
            )
        }
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected an HTTP refusal, the socket opened"),
    }
}

#[test]
fn the_dashboard_invites_over_a_websocket() {
    let s = Server::start_with_config("[sites.\"live.test\"]\nlive_invites = true\n");
    let key = common::site_with_stats_key(&s, "live.test");
    let quiet_key = common::site_with_stats_key(&s, "quiet.test");
    let bearer = format!("Bearer {key}");

    // A key in the header; the sub-protocol is answered when asked for.
    let (mut feed, response) = ws_open(
        &s,
        "live.test",
        &[
            ("authorization", &bearer),
            ("sec-websocket-protocol", "footfall.live"),
        ],
    )
    .expect("WebSocket opens");
    assert_eq!(selected_protocol(&response), Some("footfall.live"));
    let ready = ws_next(&mut feed, Duration::from_secs(5), "ready");
    assert_eq!(ready["data"]["live_invites"], true);
    assert_eq!(ready["data"]["site"], "live.test");

    let token = live_token(&pageview(&s, "live.test", "/pricing", CHROME_UA)).expect("token");
    let arrival = ws_next(&mut feed, Duration::from_secs(10), "arrival");
    assert_eq!(arrival["data"]["page"], "/pricing");
    let visitor = arrival["data"]["visitor"]
        .as_str()
        .expect("visitor id")
        .to_string();

    // Before the tracker opens its channel the visitor cannot be reached.
    ws_send(
        &mut feed,
        json!({"type": "invite", "id": 1, "visitor": visitor, "text": "Hi"}),
    );
    let refused = ws_next(&mut feed, Duration::from_secs(5), "error");
    assert_eq!(refused["id"], 1);
    assert_eq!(refused["data"]["code"], "visitor_not_live");
    assert_eq!(refused["data"]["status"], 404);

    let (status, _, mut channel) = Sse::open(&s, &format!("/api/live/visitor?t={token}"), None);
    assert_eq!(status, 200);
    channel.next(Duration::from_secs(5), |e, _| e == "ready");
    let reachable = ws_next(&mut feed, Duration::from_secs(5), "channel");
    assert_eq!(reachable["data"]["invitable"], true);

    ws_send(
        &mut feed,
        json!({"type": "invite", "id": "a7", "visitor": visitor,
               "text": "Want a quick demo?", "url": "https://meet.example.com/demo"}),
    );
    let invited = ws_next(&mut feed, Duration::from_secs(5), "invited");
    assert_eq!(invited["id"], "a7");
    assert_eq!(invited["data"], json!({"visitor": visitor, "delivered": 1}));
    let (_, invitation) = channel.next(Duration::from_secs(5), |e, _| e == "invite");
    assert_eq!(
        invitation,
        json!({"text": "Want a quick demo?", "url": "https://meet.example.com/demo"})
    );

    // Bad commands are answered with the HTTP API's errors; the socket stays open.
    for (command, code) in [
        (
            json!({"type": "invite", "id": 2, "visitor": visitor, "text": "Hi", "url": "javascript:alert(1)"}),
            "invalid_request",
        ),
        (
            json!({"type": "invite", "id": 3, "text": "Hi"}),
            "invalid_request",
        ),
        (json!({"type": "shout", "id": 4}), "invalid_request"),
    ] {
        let id = command["id"].clone();
        ws_send(&mut feed, command);
        let error = ws_next(&mut feed, Duration::from_secs(5), "error");
        assert_eq!(
            (&error["id"], error["data"]["code"].as_str()),
            (&id, Some(code))
        );
        assert_eq!(error["data"]["status"], 400);
        assert!(
            error["data"]["error"]
                .as_str()
                .is_some_and(|e| !e.is_empty())
        );
    }
    feed.send(tungstenite::Message::Text("{not json".into()))
        .expect("send");
    let error = ws_next(&mut feed, Duration::from_secs(5), "error");
    assert_eq!(error["data"]["code"], "invalid_json");

    // The feed goes on: the same visitor's next page.
    pageview(&s, "live.test", "/docs", CHROME_UA);
    let moved = ws_next(&mut feed, Duration::from_secs(10), "page");
    assert_eq!(moved["data"]["page"], "/docs");

    // A browser names its key as a sub-protocol beside `footfall.live`.
    let protocols = format!("footfall.live, bearer.{key}");
    let (mut second, response) =
        ws_open(&s, "live.test", &[("sec-websocket-protocol", &protocols)])
            .expect("key as a sub-protocol");
    assert_eq!(selected_protocol(&response), Some("footfall.live"));
    let ready = ws_next(&mut second, Duration::from_secs(5), "ready");
    assert_eq!(ready["data"]["visitors"], 1);
    ws_next(&mut second, Duration::from_secs(5), "arrival");
    let _ = second.close(None);

    // Refusals are the usual JSON errors, before the upgrade.
    let (status, body) = handshake_error(ws_open(&s, "live.test", &[]));
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    let other = format!("Bearer {quiet_key}");
    let (status, _) = handshake_error(ws_open(&s, "live.test", &[("authorization", &other)]));
    assert_eq!(status, 403);
    // A page of another origin cannot ride on a signed-in user's cookie.
    let (status, body) = handshake_error(ws_open(
        &s,
        "live.test",
        &[
            ("origin", "https://evil.example"),
            ("cookie", "ff_session=0123"),
        ],
    ));
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let (status, _) = handshake_error(ws_open(&s, "nowhere.test", &[("authorization", &bearer)]));
    assert_eq!(status, 404);

    let _ = feed.close(None);
    channel.hang_up();
}

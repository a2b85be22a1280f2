//! A scripted HTTP/1.1 server on loopback, for what real servers will not do on demand: a
//! character split across two network writes, a 429 with `Retry-After`. Each connection gets the
//! next response of the script, written piece by piece with a flush and a pause between pieces
//! (so the client reads them separately), then closed; when each request arrived is kept.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One response, as the pieces written one after the other.
pub type Response = Vec<Vec<u8>>;

pub struct Scripted {
    pub url: String,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl Scripted {
    /// When each request had arrived whole, in order.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().unwrap().clone()
    }
}

/// Serves the script on a free port, one response per connection, then stops listening.
pub async fn serve(script: Vec<Response>) -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let seen = arrivals.clone();
    tokio::spawn(async move {
        for response in script {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            read_request(&mut stream).await;
            seen.lock().unwrap().push(Instant::now());
            for piece in response {
                let _ = stream.write_all(&piece).await;
                let _ = stream.flush().await;
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            let _ = stream.shutdown().await;
        }
    });
    Scripted { url, arrivals }
}

/// Reads a request's head and its `Content-Length` body (a server that closes with the body
/// unread may reset the connection before the client reads the answer).
async fn read_request(stream: &mut TcpStream) {
    let mut req = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = req.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&req[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while req.len() < head_end + length {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
}

/// A whole response with a fixed length, in one piece.
pub fn fixed(status: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    vec![format!("{head}\r\n{body}").into_bytes()]
}

/// A 200 with a chunked body, each piece its own HTTP chunk and its own write.
pub fn chunked(content_type: &str, pieces: &[&[u8]]) -> Response {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let mut out = vec![head.into_bytes()];
    for piece in pieces {
        let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
        chunk.extend_from_slice(piece);
        chunk.extend_from_slice(b"\r\n");
        out.push(chunk);
    }
    out.push(b"0\r\n\r\n".to_vec());
    out
}

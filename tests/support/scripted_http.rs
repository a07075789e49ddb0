//! A tiny HTTP server on 127.0.0.1 that answers every request with what a
//! closure says and records what it received (headers included): for
//! servers that misbehave on purpose (echoing the request headers into a
//! 500, answering 200 with garbage, redirecting elsewhere). Std only.

use std::io::BufReader;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::http::{Request, Response, read_request};

type Answer = dyn Fn(&Request) -> Response + Send + Sync;

/// One received request: method, target, and its headers.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct ScriptedHttp {
    pub url: String,
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stopping: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl ScriptedHttp {
    /// Binds a free port on 127.0.0.1 (panics if it cannot: a test that
    /// needs a server fails, never skips).
    pub fn start(answer: impl Fn(&Request) -> Response + Send + Sync + 'static) -> ScriptedHttp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let answer: Arc<Answer> = Arc::new(answer);
        let accept = {
            let (seen, stopping) = (Arc::clone(&seen), Arc::clone(&stopping));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let (seen, answer) = (Arc::clone(&seen), Arc::clone(&answer));
                    std::thread::spawn(move || serve(stream, &seen, &*answer));
                }
            })
        };
        ScriptedHttp {
            url: format!("http://127.0.0.1:{port}"),
            port,
            seen,
            stopping,
            accept: Some(accept),
        }
    }

    /// Answers every request with `status` and a body listing every header
    /// it received and the request line, like a debugging proxy would.
    pub fn echoing(status: u16) -> ScriptedHttp {
        ScriptedHttp::start(move |req| {
            // Headers first: a client that cuts long bodies short must
            // still be tested on the token.
            let mut body = String::new();
            for (name, value) in &req.headers {
                body.push_str(&format!("{name}: {value}\n"));
            }
            body.push_str(&format!("{} {}\n", req.method, req.target));
            Response::text(status, &body)
        })
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen lock").clone()
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Seen>>, answer: &Answer) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Ok(Some(req)) = read_request(&mut reader, &mut writer) {
        seen.lock().expect("seen lock").push(Seen {
            method: req.method.clone(),
            target: req.target.clone(),
            headers: req.headers.clone(),
        });
        let response = answer(&req);
        if response.write_to(&mut writer, req.keep_alive).is_err() || !req.keep_alive {
            return;
        }
    }
}

impl Drop for ScriptedHttp {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `stopping`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

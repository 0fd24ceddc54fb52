//! A real headless Chromium driven over WebDriver: the test starts its own
//! `chromedriver` on a free port (in a process group of its own, killed with it when
//! the test ends, passed or not) and one browser session with a fresh profile.
//!
//! Where the driver is: `ORCHESTRATOR_TEST_CHROMEDRIVER`, else `/usr/bin/chromedriver`
//! or `chromedriver` on `PATH`; the browser: `ORCHESTRATOR_TEST_CHROMIUM`, else
//! `/usr/bin/chromium` when it exists (else chromedriver's own search). Without a
//! driver the test is skipped with a line on stderr, except under `CI=true`, where it
//! fails.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// `chromedriver`'s path, if there is one.
fn chromedriver() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ORCHESTRATOR_TEST_CHROMEDRIVER") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "ORCHESTRATOR_TEST_CHROMEDRIVER={} is not a file",
            path.display()
        );
        return Some(path);
    }
    let fixed = Path::new("/usr/bin/chromedriver");
    if fixed.is_file() {
        return Some(fixed.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("chromedriver"))
        .find(|path| path.is_file())
}

/// The browser binary to ask for, if known (else chromedriver finds one).
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ORCHESTRATOR_TEST_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let fixed = Path::new("/usr/bin/chromium");
    fixed.is_file().then(|| fixed.to_path_buf())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A scratch directory (the browser profile, the driver's log), removed on drop.
struct Profile(PathBuf);

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `chromedriver` and everything it started (the browser), killed as a process group.
struct Driver {
    child: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group whose id is the driver's pid: the driver and its browser processes.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session. Fields drop in order: the session, the driver, the profile.
pub struct Browser {
    pub client: Client,
    driver: Driver,
    profile: Profile,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("driver_pid", &self.driver.child.id())
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// A fresh headless session, or `None` (skipped, said on stderr) when there is no
    /// chromedriver outside CI. Panics under `CI=true` without one.
    pub async fn start(test: &str) -> Option<Self> {
        let Some(driver_bin) = chromedriver() else {
            assert!(
                !in_ci(),
                "{test}: chromedriver not found (set ORCHESTRATOR_TEST_CHROMEDRIVER or \
                 install Debian's chromium-driver); the dashboard's browser tests do not \
                 skip under CI=true"
            );
            eprintln!(
                "{test}: skipped, no chromedriver (set ORCHESTRATOR_TEST_CHROMEDRIVER or \
                 install chromium-driver)"
            );
            return None;
        };
        let profile = Profile(std::env::temp_dir().join(format!(
            "orchestrator-dashboard-{}-{}-{}",
            std::process::id(),
            test,
            fastrand::u64(..)
        )));
        std::fs::create_dir_all(&profile.0).expect("profile dir");

        // A few tries: the free port can be taken between the probe and the bind.
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port();
            let mut command = Command::new(&driver_bin);
            command
                .arg(format!("--port={port}"))
                .arg(format!(
                    "--log-path={}",
                    profile.0.join("chromedriver.log").display()
                ))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            #[cfg(unix)]
            {
                use std::os::unix::process::CommandExt;
                command.process_group(0);
            }
            let child = command
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", driver_bin.display()));
            let mut driver = Driver { child };
            if let Err(e) = wait_for_driver(&mut driver.child, port, Duration::from_secs(30)) {
                last_error = e;
                continue;
            }
            let client = connect(port, &profile.0).await;
            return Some(Self {
                client,
                driver,
                profile,
            });
        }
        panic!("{test}: chromedriver did not start: {last_error}")
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("execute {script:?}: {e}"))
    }

    /// Like [`Self::js`] but the error is returned (the page may be mid-render).
    pub async fn try_js(&self, script: &str, args: Vec<Value>) -> Result<Value, String> {
        self.client
            .execute(script, args)
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// Clicks the first element matching `css` once it is displayed, within `limit`
    /// (retrying if the page re-renders it between finding and clicking).
    pub async fn click(&self, css: &str, limit: Duration) {
        eventually(&format!("click {css}"), limit, || async {
            let el = self.displayed_element(css).await?;
            el.click().await.map_err(|e| e.to_string())
        })
        .await;
    }

    /// Types `text` into the first element matching `css` once it is displayed.
    pub async fn type_into(&self, css: &str, text: &str, limit: Duration) {
        eventually(&format!("type into {css}"), limit, || async {
            let el = self.displayed_element(css).await?;
            el.clear().await.map_err(|e| e.to_string())?;
            el.send_keys(text).await.map_err(|e| e.to_string())
        })
        .await;
    }

    /// The first element matching `css`, if it is displayed.
    async fn displayed_element(&self, css: &str) -> Result<fantoccini::elements::Element, String> {
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .map_err(|e| e.to_string())?;
        if el.is_displayed().await.map_err(|e| e.to_string())? {
            Ok(el)
        } else {
            Err("not displayed".to_owned())
        }
    }

    /// Whether an element matching `css` exists and is displayed.
    pub async fn displayed(&self, css: &str) -> Result<bool, String> {
        match self.client.find(Locator::Css(css)).await {
            Ok(el) => el.is_displayed().await.map_err(|e| e.to_string()),
            Err(e) if e.is_no_such_element() => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }

    /// What the page shows, for failure messages: `#status-line` and the body text.
    pub async fn describe(&self) -> String {
        self.try_js(
            "const s = document.querySelector('#status-line');
             return 'url: ' + location.href + '\\nstatus-line: ' +
                 (s ? JSON.stringify(s.textContent) : '(none)') +
                 '\\nbody: ' + document.body.innerText.slice(0, 2000);",
            vec![],
        )
        .await
        .map_or_else(
            |e| format!("(page unreadable: {e})"),
            |v| v.as_str().unwrap_or_default().to_owned(),
        )
    }
}

async fn connect(port: u16, profile: &Path) -> Client {
    let user_data = profile.join("user-data");
    let mut chrome = json!({
        "args": [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--window-size=1400,1000",
            format!("--user-data-dir={}", user_data.display()),
        ],
    });
    if let Some(bin) = chromium() {
        chrome["binary"] = json!(bin.display().to_string());
    }
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert("goog:chromeOptions".into(), chrome);
    // An alert the page opens stays open (and is seen), instead of being dismissed.
    caps.insert("unhandledPromptBehavior".into(), json!("ignore"));
    let url = format!("http://127.0.0.1:{port}");
    let mut last = String::new();
    // The first session can be slow on a cold machine; a few tries.
    for _ in 0..3 {
        match ClientBuilder::new(HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return client,
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let log = std::fs::read_to_string(profile.join("chromedriver.log")).unwrap_or_default();
    let tail: String = log
        .lines()
        .rev()
        .take(30)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    panic!("no browser session from chromedriver: {last}\nchromedriver.log tail:\n{tail}")
}

/// Until `GET /status` on `port` answers, or the driver exits, or `limit` passes.
fn wait_for_driver(child: &mut Child, port: u16, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("chromedriver exited: {status}"));
        }
        if let Ok(r) = raw_http(addr, "GET", "/status", &[], "") {
            if r.status == 200 && r.body.contains("ready") {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("no answer on port {port} within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A response of [`raw_http`].
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Names lowercased, in the order sent.
    pub headers: Vec<(String, String)>,
    /// As text (a chunked body is not decoded).
    pub body: String,
}

impl Response {
    /// The first header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on its own connection.
pub fn raw_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Response, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    write!(stream, "{head}\r\n{body}").map_err(|e| e.to_string())?;
    // Up to the end of the head, then `content-length` bytes (chromedriver keeps the
    // connection open despite `connection: close`), else to the end.
    let mut raw = Vec::new();
    let mut chunk = [0_u8; 8192];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!(
                "not a full response: {:?}",
                String::from_utf8_lossy(&raw)
            ));
        }
        raw.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line: {head:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let mut body = raw.split_off(head_end + 4);
    match length {
        Some(length) => {
            while body.len() < length {
                let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        }
        None => {
            stream.read_to_end(&mut body).map_err(|e| e.to_string())?;
        }
    }
    let body = String::from_utf8_lossy(&body);
    Ok(Response {
        status,
        headers,
        body: body.into_owned(),
    })
}

/// A JSON request with `Authorization: Bearer token`: status and body.
pub fn http_with_token(
    addr: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let r = raw_http(
        addr,
        method,
        path,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        body,
    )
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let json = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body));
    (r.status, json)
}

/// Calls `f` every 100 ms until it gives `Ok`, or panics after `limit` with `what`
/// and the last `Err` (what was seen instead).
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(seen) => {
                assert!(
                    Instant::now() < deadline,
                    "{what}: not within {limit:?}; last seen: {seen}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

//! Embedded DNS server for user-defined networks (the equivalent of Docker's 127.0.0.11
//! resolver). It answers A/AAAA/PTR queries for container names from a [`Lookup`] the daemon
//! provides and forwards everything else to the host's upstream resolvers.
//!
//! The server runs on its own thread with a current-thread tokio runtime; the public methods
//! talk to it over channels so they can be called from any plain (or `spawn_blocking`) thread.

use std::collections::btree_map::{BTreeMap, Entry};
use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{mpsc, Arc, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc as tmpsc, watch, Semaphore};
use tokio::time::timeout;

/// TTL of the records we answer ourselves (the value Docker uses).
const TTL: u32 = 600;
/// How long to wait for one upstream before trying the next.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle TCP connections are closed so clients cannot pin sockets forever.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Bounds on concurrently forwarded queries (beyond: SERVFAIL) and on open TCP connections.
const MAX_IN_FLIGHT: usize = 256;
const MAX_TCP_CONNS: usize = 256;
/// UDP payload size we advertise in our own EDNS answers.
const EDNS_PAYLOAD: u16 = 1232;

/// Who asked: a client reaching a listener on a network's address, or a container
/// through the listener made inside its own network namespace (127.0.0.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asker<'a> {
    Network { server: SocketAddr, client: IpAddr },
    Container(&'a str),
}

/// What the daemon knows: names on the networks of whoever asked.
pub trait Lookup: Send + Sync + 'static {
    /// Addresses for `name` (lowercase, no trailing dot). None: not a name of ours
    /// (forward it). Some(v): ours (v may hold only v4 or only v6 addresses; answer with
    /// the family asked; an empty answer with NOERROR when ours but no address of that
    /// family).
    fn lookup(&self, asker: Asker<'_>, name: &str) -> Option<Vec<IpAddr>>;
    /// Name for a reverse (PTR) query of `ip`, or None to forward.
    fn reverse(&self, asker: Asker<'_>, ip: IpAddr) -> Option<String>;
}

/// What a listener serves: a network's address, or one container (with the upstreams
/// of its own `--dns`, if any).
#[derive(Debug, Clone)]
enum Origin {
    Network(SocketAddr),
    Container {
        id: String,
        upstreams: Option<Vec<SocketAddr>>,
    },
}

impl Origin {
    fn asker(&self, client: IpAddr) -> Asker<'_> {
        match self {
            Origin::Network(server) => Asker::Network {
                server: *server,
                client,
            },
            Origin::Container { id, .. } => Asker::Container(id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Addr(SocketAddr),
    Container(String),
}

/// State shared by the handle and the server thread.
struct Shared {
    lookup: Arc<dyn Lookup>,
    upstreams: RwLock<Vec<SocketAddr>>,
    in_flight: Arc<Semaphore>,
    tcp_conns: Arc<Semaphore>,
}

/// Sockets made elsewhere (inside a container's network namespace) for one container.
struct Adopted {
    id: String,
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
    upstreams: Option<Vec<SocketAddr>>,
}

enum Cmd {
    Listen(SocketAddr, mpsc::Sender<io::Result<()>>),
    Unlisten(SocketAddr, mpsc::Sender<()>),
    Adopt(Box<Adopted>, mpsc::Sender<io::Result<()>>),
    Release(String, mpsc::Sender<()>),
    Addresses(mpsc::Sender<Vec<SocketAddr>>),
    Containers(mpsc::Sender<Vec<String>>),
    Stop,
}

/// Handle to the DNS server thread. Dropping it stops the thread and closes all sockets.
pub struct DnsServer {
    shared: Arc<Shared>,
    cmds: tmpsc::UnboundedSender<Cmd>,
    thread: Option<JoinHandle<()>>,
}

impl DnsServer {
    /// Start the server's own thread (a current-thread tokio runtime), serving nothing yet.
    pub fn spawn(lookup: Arc<dyn Lookup>, upstreams: Vec<SocketAddr>) -> io::Result<DnsServer> {
        let shared = Arc::new(Shared {
            lookup,
            upstreams: RwLock::new(upstreams),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            tcp_conns: Arc::new(Semaphore::new(MAX_TCP_CONNS)),
        });
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (cmds, rx) = tmpsc::unbounded_channel();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new().name("berth-dns".into()).spawn(move || {
            rt.block_on(run(thread_shared, rx));
            // Dropping the runtime drops every task, closing the remaining sockets.
            drop(rt);
        })?;
        Ok(DnsServer {
            shared,
            cmds,
            thread: Some(thread),
        })
    }

    /// Replace the upstream list (the host's resolv.conf changed).
    pub fn set_upstreams(&self, upstreams: Vec<SocketAddr>) {
        *self.shared.upstreams.write().unwrap_or_else(PoisonError::into_inner) = upstreams;
    }

    /// Serve UDP and TCP on `addr` (both bound before returning; errors returned, e.g. address
    /// in use). Listening on an address already served is Ok (no-op). Port 0 is rejected, since
    /// UDP and TCP could end up on different ports. Blocking call, usable from non-async code.
    pub fn listen(&self, addr: SocketAddr) -> io::Result<()> {
        self.call(|tx| Cmd::Listen(addr, tx))?
    }

    /// Stop serving `addr` (sockets closed before returning).
    pub fn unlisten(&self, addr: SocketAddr) {
        let _ = self.call(|tx| Cmd::Unlisten(addr, tx));
    }

    /// Serve container `id` on sockets bound inside its network namespace (replacing
    /// any it had); names are looked up on its networks, unknown ones forwarded to
    /// `upstreams` (the daemon's when None).
    pub fn adopt(
        &self,
        id: &str,
        udp: std::net::UdpSocket,
        tcp: std::net::TcpListener,
        upstreams: Option<Vec<SocketAddr>>,
    ) -> io::Result<()> {
        let a = Box::new(Adopted {
            id: id.into(),
            udp,
            tcp,
            upstreams,
        });
        self.call(|tx| Cmd::Adopt(a, tx))?
    }

    /// Stop serving container `id` (its sockets closed before returning).
    pub fn release(&self, id: &str) {
        let _ = self.call(|tx| Cmd::Release(id.into(), tx));
    }

    /// Whether container `id` is served.
    pub fn serves(&self, id: &str) -> bool {
        self.call(Cmd::Containers).unwrap_or_default().iter().any(|c| c == id)
    }

    /// The addresses being served.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.call(Cmd::Addresses).unwrap_or_default()
    }

    /// Send a command to the server thread and wait for its reply.
    fn call<T>(&self, make: impl FnOnce(mpsc::Sender<T>) -> Cmd) -> io::Result<T> {
        let gone = || io::Error::other("DNS server thread is gone");
        let (tx, rx) = mpsc::channel();
        self.cmds.send(make(tx)).map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.cmds.send(Cmd::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The server thread's command loop. Each listener is a `watch` sender: every task serving it
/// holds a receiver, so `closed()` tells us when all of them (and their sockets) are gone.
async fn run(shared: Arc<Shared>, mut cmds: tmpsc::UnboundedReceiver<Cmd>) {
    let mut listeners: BTreeMap<Key, watch::Sender<bool>> = BTreeMap::new();
    async fn stop(listeners: &mut BTreeMap<Key, watch::Sender<bool>>, key: &Key) {
        if let Some(stop) = listeners.remove(key) {
            let _ = stop.send(true);
            stop.closed().await;
        }
    }
    while let Some(cmd) = cmds.recv().await {
        match cmd {
            Cmd::Listen(addr, reply) => {
                let res = match listeners.entry(Key::Addr(addr)) {
                    Entry::Occupied(_) => Ok(()),
                    Entry::Vacant(entry) => start(&shared, addr).await.map(|stop| {
                        entry.insert(stop);
                    }),
                };
                let _ = reply.send(res);
            }
            Cmd::Unlisten(addr, reply) => {
                stop(&mut listeners, &Key::Addr(addr)).await;
                let _ = reply.send(());
            }
            Cmd::Adopt(a, reply) => {
                let key = Key::Container(a.id.clone());
                stop(&mut listeners, &key).await;
                let res = serve(&shared, *a).map(|s| {
                    listeners.insert(key, s);
                });
                let _ = reply.send(res);
            }
            Cmd::Release(id, reply) => {
                stop(&mut listeners, &Key::Container(id)).await;
                let _ = reply.send(());
            }
            Cmd::Addresses(reply) => {
                let addrs = listeners.keys().filter_map(|k| match k {
                    Key::Addr(a) => Some(*a),
                    Key::Container(_) => None,
                });
                let _ = reply.send(addrs.collect());
            }
            Cmd::Containers(reply) => {
                let ids = listeners.keys().filter_map(|k| match k {
                    Key::Container(c) => Some(c.clone()),
                    Key::Addr(_) => None,
                });
                let _ = reply.send(ids.collect());
            }
            Cmd::Stop => break,
        }
    }
}

async fn start(shared: &Arc<Shared>, addr: SocketAddr) -> io::Result<watch::Sender<bool>> {
    if addr.port() == 0 {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    let udp = Arc::new(UdpSocket::bind(addr).await?);
    let tcp = TcpListener::bind(addr).await?;
    Ok(spawn_listener(shared, Arc::new(Origin::Network(addr)), udp, tcp))
}

fn serve(shared: &Arc<Shared>, a: Adopted) -> io::Result<watch::Sender<bool>> {
    a.udp.set_nonblocking(true)?;
    a.tcp.set_nonblocking(true)?;
    let udp = Arc::new(UdpSocket::from_std(a.udp)?);
    let tcp = TcpListener::from_std(a.tcp)?;
    let origin = Origin::Container {
        id: a.id,
        upstreams: a.upstreams,
    };
    Ok(spawn_listener(shared, Arc::new(origin), udp, tcp))
}

fn spawn_listener(
    shared: &Arc<Shared>,
    origin: Arc<Origin>,
    udp: Arc<UdpSocket>,
    tcp: TcpListener,
) -> watch::Sender<bool> {
    let (stop, stop_rx) = watch::channel(false);
    tokio::spawn(guarded(
        stop_rx.clone(),
        serve_tcp(shared.clone(), origin.clone(), tcp, stop_rx.clone()),
    ));
    tokio::spawn(guarded(
        stop_rx.clone(),
        serve_udp(shared.clone(), origin, udp, stop_rx),
    ));
    stop
}

/// Run `fut` until it ends or the listener is stopped; `fut` (and its sockets) is dropped
/// before `stop`, so the listener's `closed()` implies the sockets are closed.
async fn guarded(mut stop: watch::Receiver<bool>, fut: impl Future<Output = ()>) {
    tokio::select! {
        _ = fut => {}
        _ = stop.wait_for(|stopped| *stopped) => {}
    }
}

async fn serve_udp(shared: Arc<Shared>, origin: Arc<Origin>, sock: Arc<UdpSocket>, stop: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 4096];
    loop {
        // Errors on an unconnected UDP socket are transient (e.g. a client vanished).
        let Ok((n, src)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let raw = &buf[..n];
        match respond(&shared, origin.asker(src.ip()), raw, true) {
            Action::Reply(reply) => {
                let _ = sock.send_to(&reply, src).await;
            }
            Action::Forward(query) => {
                let Ok(permit) = shared.in_flight.clone().try_acquire_owned() else {
                    if let Some(reply) = error_reply(&query, ResponseCode::ServFail) {
                        let _ = sock.send_to(&reply, src).await;
                    }
                    continue;
                };
                // A task per forwarded query so a slow upstream does not stall other clients.
                let (shared, sock, raw, origin) = (shared.clone(), sock.clone(), raw.to_vec(), origin.clone());
                tokio::spawn(guarded(stop.clone(), async move {
                    let _permit = permit;
                    if let Some(reply) = forward(&shared, &origin, &raw, &query, false).await {
                        let _ = sock.send_to(&reply, src).await;
                    }
                }));
            }
            Action::Ignore => {}
        }
    }
}

async fn serve_tcp(shared: Arc<Shared>, origin: Arc<Origin>, listener: TcpListener, stop: watch::Receiver<bool>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(_) => {
                // E.g. EMFILE: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = shared.tcp_conns.clone().try_acquire_owned() else {
            continue;
        };
        let (shared, origin) = (shared.clone(), origin.clone());
        tokio::spawn(guarded(stop.clone(), async move {
            let _permit = permit;
            serve_tcp_conn(&shared, &origin, stream, peer.ip()).await;
        }));
    }
}

/// One TCP connection: length-prefixed queries answered in order until idle, EOF or garbage.
async fn serve_tcp_conn(shared: &Shared, origin: &Origin, mut stream: TcpStream, client: IpAddr) {
    loop {
        let Ok(Ok(raw)) = timeout(TCP_IDLE, read_frame(&mut stream)).await else {
            return;
        };
        let reply = match respond(shared, origin.asker(client), &raw, false) {
            Action::Reply(reply) => Some(reply),
            Action::Forward(query) => match shared.in_flight.clone().try_acquire_owned() {
                Ok(_permit) => forward(shared, origin, &raw, &query, true).await,
                Err(_) => error_reply(&query, ResponseCode::ServFail),
            },
            Action::Ignore => None,
        };
        let Some(framed) = reply.as_deref().and_then(frame) else {
            return;
        };
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

enum Action {
    Reply(Vec<u8>),
    Forward(Message),
    Ignore,
}

/// Decide what to do with one raw query: answer it ourselves, forward it, or drop it.
fn respond(shared: &Shared, asker: Asker<'_>, raw: &[u8], udp: bool) -> Action {
    let Ok(query) = Message::from_vec(raw) else {
        return Action::Ignore;
    };
    // Never answer responses: that could set up a loop between two servers.
    if query.message_type != MessageType::Query {
        return Action::Ignore;
    }
    let response = if query.op_code != OpCode::Query {
        build_reply(&query, ResponseCode::NotImp, Vec::new())
    } else if query.queries.len() != 1 {
        build_reply(&query, ResponseCode::FormErr, Vec::new())
    } else {
        match local_answers(shared, asker, &query.queries[0]) {
            Some(answers) => build_reply(&query, ResponseCode::NoError, answers),
            None => return Action::Forward(query),
        }
    };
    let limit = if udp {
        usize::from(query.max_payload())
    } else {
        usize::MAX
    };
    match encode(response, limit) {
        Some(bytes) => Action::Reply(bytes),
        None => Action::Ignore,
    }
}

/// Our answer records for `q`, or None when the name is not ours.
fn local_answers(shared: &Shared, asker: Asker<'_>, q: &Query) -> Option<Vec<Record>> {
    if q.query_class() != DNSClass::IN {
        return None;
    }
    if q.query_type() == RecordType::PTR {
        if let Ok(net) = q.name().parse_arpa_name() {
            // Only a full address is a reverse query of one container (not a zone prefix).
            if net.prefix_len() == net.max_prefix_len() {
                let target = shared.lookup.reverse(asker, net.addr())?;
                let target = Name::from_ascii(format!("{}.", target.trim_end_matches('.'))).ok()?;
                return Some(vec![Record::from_rdata(q.name().clone(), TTL, RData::PTR(PTR(target)))]);
            }
        }
    }
    let name = q.name().to_ascii().to_ascii_lowercase();
    let addrs = shared.lookup.lookup(asker, name.strip_suffix('.').unwrap_or(&name))?;
    let rdata = |ip| match (ip, q.query_type()) {
        (IpAddr::V4(v4), RecordType::A) => Some(RData::A(A(v4))),
        (IpAddr::V6(v6), RecordType::AAAA) => Some(RData::AAAA(AAAA(v6))),
        _ => None,
    };
    let record = |data| Record::from_rdata(q.name().clone(), TTL, data);
    Some(addrs.into_iter().filter_map(rdata).map(record).collect())
}

fn build_reply(query: &Message, code: ResponseCode, answers: Vec<Record>) -> Message {
    let mut reply = Message::error_msg(query.id, query.op_code, code);
    reply.metadata.authoritative = code == ResponseCode::NoError;
    reply.metadata.recursion_desired = query.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_queries(query.queries.iter().cloned());
    reply.insert_answers(answers);
    // RFC 6891: a query with OPT gets an OPT back.
    if query.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        reply.set_edns(edns);
    }
    reply
}

fn error_reply(query: &Message, code: ResponseCode) -> Option<Vec<u8>> {
    encode(build_reply(query, code, Vec::new()), usize::MAX)
}

/// Encode, dropping answers and setting TC while over `limit` (clients then retry over TCP).
fn encode(mut msg: Message, limit: usize) -> Option<Vec<u8>> {
    loop {
        let bytes = msg.to_vec().ok()?;
        if bytes.len() <= limit || msg.answers.is_empty() {
            return Some(bytes);
        }
        msg.metadata.truncation = true;
        msg.answers.pop();
    }
}

/// Try each upstream in order, relaying the reply unchanged except for the ID; SERVFAIL when
/// none answers.
async fn forward(shared: &Shared, origin: &Origin, raw: &[u8], query: &Message, tcp_client: bool) -> Option<Vec<u8>> {
    let upstreams = match origin {
        Origin::Container {
            upstreams: Some(own), ..
        } => own.clone(),
        _ => shared.upstreams.read().unwrap_or_else(PoisonError::into_inner).clone(),
    };
    let mut upstream_query = raw.to_vec();
    for upstream in upstreams {
        // A fresh random ID (and source port) per upstream query makes spoofed replies harder.
        upstream_query[..2].copy_from_slice(&random_id().to_be_bytes());
        let q = &upstream_query;
        let Ok(Ok(mut reply)) = timeout(UPSTREAM_TIMEOUT, udp_exchange(upstream, q)).await else {
            continue;
        };
        // A truncated answer is retried over TCP only for TCP clients; UDP clients see TC.
        if tcp_client && reply[2] & 0x02 != 0 {
            match timeout(UPSTREAM_TIMEOUT, tcp_exchange(upstream, q)).await {
                Ok(Ok(full)) => reply = full,
                _ => continue,
            }
        }
        reply[..2].copy_from_slice(&query.id.to_be_bytes());
        return Some(reply);
    }
    error_reply(query, ResponseCode::ServFail)
}

async fn udp_exchange(upstream: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(local).await?;
    // Connected: the kernel drops datagrams from other sources and reports ICMP errors.
    sock.connect(upstream).await?;
    sock.send(query).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).await?;
        if is_reply_to(&buf[..n], query) {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn tcp_exchange(upstream: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).await?;
    let framed = frame(query).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    stream.write_all(&framed).await?;
    let reply = read_frame(&mut stream).await?;
    if !is_reply_to(&reply, query) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "unexpected DNS reply"));
    }
    Ok(reply)
}

/// A DNS response (QR set, full header) carrying the query's ID.
fn is_reply_to(reply: &[u8], query: &[u8]) -> bool {
    reply.len() >= 12 && query.len() >= 2 && reply[..2] == query[..2] && reply[2] & 0x80 != 0
}

async fn read_frame(stream: &mut (impl AsyncRead + Unpin)) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Prefix with the 2-byte TCP length; None if too long for it.
fn frame(msg: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(msg.len()).ok()?;
    Some([&len.to_be_bytes()[..], msg].concat())
}

fn random_id() -> u16 {
    // RandomState is seeded randomly per process and perturbed per instance: enough for IDs.
    RandomState::new().build_hasher().finish() as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpStream as StdTcpStream, UdpSocket as StdUdpSocket};
    use std::time::Instant;

    const WEB: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 88, 0, 5));
    const V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 5));

    struct Names;
    impl Lookup for Names {
        fn lookup(&self, _: Asker<'_>, name: &str) -> Option<Vec<IpAddr>> {
            match name {
                "web" | "web.mynet" => Some(vec![WEB]),
                "v6only" => Some(vec![V6]),
                "many" => Some((1..=60).map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))).collect()),
                _ => None,
            }
        }
        fn reverse(&self, _: Asker<'_>, ip: IpAddr) -> Option<String> {
            match ip {
                WEB => Some("web.mynet".into()),
                V6 => Some("v6only".into()),
                _ => None,
            }
        }
    }

    /// Listen on a free loopback port (probe with port 0, then listen on that port).
    fn listen_free(server: &DnsServer) -> SocketAddr {
        for _ in 0..20 {
            let port = StdUdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            if server.listen(addr).is_ok() {
                return addr;
            }
        }
        panic!("no free port");
    }

    fn start(upstreams: Vec<SocketAddr>) -> (DnsServer, SocketAddr) {
        let server = DnsServer::spawn(Arc::new(Names), upstreams).unwrap();
        let addr = listen_free(&server);
        (server, addr)
    }

    fn query(name: &str, rtype: RecordType) -> Message {
        let mut msg = Message::query();
        msg.metadata.recursion_desired = true;
        msg.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
        msg
    }

    fn ask_raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Message> {
        let sock = StdUdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(wait)).unwrap();
        sock.send_to(bytes, addr).unwrap();
        let mut buf = [0u8; 65535];
        let n = sock.recv(&mut buf).ok()?;
        Some(Message::from_vec(&buf[..n]).unwrap())
    }

    /// Ask over UDP; checks the reply carries the query's ID.
    fn ask(addr: SocketAddr, name: &str, rtype: RecordType) -> Message {
        let q = query(name, rtype);
        let reply = ask_raw(addr, &q.to_vec().unwrap(), Duration::from_secs(5)).expect("no answer");
        assert_eq!(reply.id, q.id);
        reply
    }

    fn ask_tcp(stream: &mut StdTcpStream, name: &str, rtype: RecordType) -> Message {
        let q = query(name, rtype);
        stream.write_all(&frame(&q.to_vec().unwrap()).unwrap()).unwrap();
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).unwrap();
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut buf).unwrap();
        let reply = Message::from_vec(&buf).unwrap();
        assert_eq!(reply.id, q.id);
        reply
    }

    fn addrs(reply: &Message) -> Vec<IpAddr> {
        let ip = |r: &Record| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        };
        reply.answers.iter().filter_map(ip).collect()
    }

    fn ptr(reply: &Message) -> String {
        match &reply.answers[..] {
            [Record {
                data: RData::PTR(ptr), ..
            }] => ptr.0.to_ascii(),
            _ => panic!("not one PTR: {reply:?}"),
        }
    }

    /// A fake upstream resolver answering every query with 93.184.216.34 (TTL 77).
    fn fake_upstream() -> SocketAddr {
        let sock = StdUdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let addr = sock.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((n, src)) = sock.recv_from(&mut buf) {
                let Ok(q) = Message::from_vec(&buf[..n]) else { continue };
                let mut r = Message::response(q.id, q.op_code);
                r.add_queries(q.queries.iter().cloned());
                let rdata = RData::A(A::new(93, 184, 216, 34));
                r.add_answer(Record::from_rdata(q.queries[0].name().clone(), 77, rdata));
                sock.send_to(&r.to_vec().unwrap(), src).unwrap();
            }
        });
        addr
    }

    /// Sockets handed over for one container: served as that container (the lookup
    /// sees who asked), its own upstreams used instead of the server's, closed on
    /// release.
    #[test]
    fn adopted_sockets_serve_one_container() {
        struct OnlyFor;
        impl Lookup for OnlyFor {
            fn lookup(&self, asker: Asker<'_>, name: &str) -> Option<Vec<IpAddr>> {
                (asker == Asker::Container("c1") && name == "web").then(|| vec![WEB])
            }
            fn reverse(&self, _: Asker<'_>, _: IpAddr) -> Option<String> {
                None
            }
        }
        let server = DnsServer::spawn(Arc::new(OnlyFor), vec![]).unwrap();
        let udp = StdUdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        let tcp = std::net::TcpListener::bind(addr).unwrap();
        server.adopt("c1", udp, tcp, Some(vec![fake_upstream()])).unwrap();
        assert!(server.serves("c1") && !server.serves("c2"));
        assert!(server.addresses().is_empty(), "not a network address listener");
        assert_eq!(addrs(&ask(addr, "web", RecordType::A)), vec![WEB]);
        let mut stream = StdTcpStream::connect(addr).unwrap();
        assert_eq!(addrs(&ask_tcp(&mut stream, "web", RecordType::A)), vec![WEB]);
        // Not its name: forwarded to the container's own upstream (the server has none).
        let other = ask(addr, "example.org", RecordType::A);
        assert_eq!(addrs(&other), vec!["93.184.216.34".parse::<IpAddr>().unwrap()]);
        server.release("c1");
        assert!(!server.serves("c1"));
        assert!(StdUdpSocket::bind(addr).is_ok(), "released sockets are closed");
    }

    #[test]
    fn answers_our_names() {
        let (_server, addr) = start(vec![]);
        let reply = ask(addr, "web", RecordType::A);
        assert_eq!(reply.response_code, ResponseCode::NoError);
        assert!(reply.authoritative && reply.recursion_available && reply.recursion_desired);
        assert_eq!((addrs(&reply), reply.answers[0].ttl), (vec![WEB], 600));
        // Only the family asked; other types for our names: NOERROR, empty.
        for (name, rtype, want) in [
            ("web", RecordType::AAAA, vec![]),
            ("web", RecordType::MX, vec![]),
            ("v6only", RecordType::A, vec![]),
            ("v6only", RecordType::AAAA, vec![V6]),
        ] {
            let reply = ask(addr, name, rtype);
            assert_eq!(reply.response_code, ResponseCode::NoError, "{name} {rtype}");
            assert_eq!(reply.answers.len(), want.len(), "{name} {rtype}");
            assert_eq!(addrs(&reply), want, "{name} {rtype}");
        }
        // Case-insensitive, trailing dot or not; the answer echoes the name as asked.
        for name in ["WeB.MyNet.", "WEB", "web."] {
            let reply = ask(addr, name, RecordType::A);
            assert_eq!(addrs(&reply), vec![WEB], "{name}");
            assert_eq!(
                reply.answers[0].name.to_ascii().trim_end_matches('.'),
                name.trim_end_matches('.')
            );
        }
        assert_eq!(
            ptr(&ask(addr, "5.0.88.10.in-addr.arpa.", RecordType::PTR)),
            "web.mynet."
        );
        let v6 = "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.";
        assert_eq!(ptr(&ask(addr, v6, RecordType::PTR)), "v6only.");
    }

    #[test]
    fn forwards_other_names() {
        let (server, addr) = start(vec![]);
        // No upstreams: SERVFAIL.
        assert_eq!(
            ask(addr, "example.com", RecordType::A).response_code,
            ResponseCode::ServFail
        );

        // An upstream that is down (bound, never read): SERVFAIL after its timeout.
        let black_hole = StdUdpSocket::bind("127.0.0.1:0").unwrap();
        let dead = black_hole.local_addr().unwrap();
        server.set_upstreams(vec![dead]);
        let started = Instant::now();
        assert_eq!(
            ask(addr, "example.com", RecordType::A).response_code,
            ResponseCode::ServFail
        );
        assert!(started.elapsed() < Duration::from_secs(4));

        // The next upstream is tried; its answer is relayed (ID checked by `ask`).
        server.set_upstreams(vec![dead, fake_upstream()]);
        let reply = ask(addr, "example.com", RecordType::A);
        assert_eq!(reply.response_code, ResponseCode::NoError);
        assert_eq!(addrs(&reply), vec![IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34))]);
        assert_eq!(reply.answers[0].ttl, 77);

        // Reverse queries for addresses not ours are forwarded too.
        server.set_upstreams(vec![fake_upstream()]);
        assert_eq!(ask(addr, "1.0.0.10.in-addr.arpa.", RecordType::PTR).answers[0].ttl, 77);
    }

    #[test]
    fn tcp_queries_and_udp_truncation() {
        let (_server, addr) = start(vec![]);
        let mut stream = StdTcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(addrs(&ask_tcp(&mut stream, "web", RecordType::A)), vec![WEB]);
        // Several queries on one connection; large answers are complete over TCP.
        let reply = ask_tcp(&mut stream, "many", RecordType::A);
        assert!(!reply.truncation && reply.answers.len() == 60);
        // Over UDP without EDNS: cut to 512 bytes, TC set.
        let reply = ask(addr, "many", RecordType::A);
        assert!(reply.truncation && !reply.answers.is_empty() && reply.answers.len() < 60);
    }

    #[test]
    fn unlisten_closes_the_port() {
        let (server, addr) = start(vec![]);
        let q = query("web", RecordType::A).to_vec().unwrap();
        assert_eq!(server.addresses(), vec![addr]);
        assert!(ask_raw(addr, &q, Duration::from_secs(5)).is_some());
        server.unlisten(addr);
        assert!(server.addresses().is_empty());
        assert!(ask_raw(addr, &q, Duration::from_millis(500)).is_none());
        assert!(StdTcpStream::connect(addr).is_err());
        // Listening again works (the sockets were really closed).
        server.listen(addr).unwrap();
        assert!(ask_raw(addr, &q, Duration::from_secs(5)).is_some());
    }

    #[test]
    fn malformed_queries_do_not_kill_the_server() {
        let (_server, addr) = start(vec![]);
        let mut truncated = query("web", RecordType::A).to_vec().unwrap();
        truncated.truncate(15);
        for junk in [&[][..], &[0xff; 5][..], &[0xff; 300][..], &truncated[..]] {
            assert!(ask_raw(addr, junk, Duration::from_millis(200)).is_none());
        }
        // Garbage over TCP: the connection is closed.
        let mut stream = StdTcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        stream.write_all(&[0, 4, 1, 2, 3, 4]).unwrap();
        assert_eq!(stream.read(&mut [0u8; 16]).unwrap_or(0), 0);

        assert_eq!(addrs(&ask(addr, "web", RecordType::A)), vec![WEB]);
    }

    #[test]
    fn listen_from_spawn_blocking_and_errors() {
        let server = Arc::new(DnsServer::spawn(Arc::new(Names), vec![]).unwrap());
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let s = server.clone();
        let addr = rt.block_on(async move { tokio::task::spawn_blocking(move || listen_free(&s)).await });
        let addr = addr.unwrap();
        assert!(server.listen(addr).is_ok(), "listening twice is a no-op");
        assert_eq!(server.addresses(), vec![addr]);
        assert_eq!(ask(addr, "web", RecordType::A).answers.len(), 1);

        let taken = StdUdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(server.listen(taken.local_addr().unwrap()).is_err());
        assert!(server.listen("127.0.0.1:0".parse().unwrap()).is_err());
        assert_eq!(server.addresses(), vec![addr]);
    }
}

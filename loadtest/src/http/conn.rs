//! Keep-alive client connections on a monoio runtime: the socket set-up
//! (bind to a chosen loopback source before a non-blocking connect) and
//! `Conn`, which writes pre-formatted requests and reads answers through a
//! `Reader`. Any read or parse error is returned; the caller drops the
//! connection and reconnects.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use monoio::buf::SliceMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use super::reader::{Reader, Resp};

/// Whether runtimes in this process use io_uring (blocking sockets) or epoll
/// (non-blocking sockets). Set once at start-up by `rt::Driver::install`.
static URING: AtomicBool = AtomicBool::new(false);

/// Records which driver the runtimes use (see `URING`).
pub fn set_uring(on: bool) {
    URING.store(on, Ordering::Relaxed);
}

/// Whether the runtimes use io_uring.
pub fn uring() -> bool {
    URING.load(Ordering::Relaxed)
}

/// Creates a TCP socket, optionally bound to a source address (before
/// connect, so that many loopback addresses can each use the full ephemeral
/// port range), and starts a non-blocking connect. Returns the std stream and
/// whether the connect is still in progress.
fn start_connect(
    addr: SocketAddrV4,
    src: Option<Ipv4Addr>,
) -> io::Result<(std::net::TcpStream, bool)> {
    // SAFETY: plain socket(2); the fd is owned by the TcpStream right after.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid socket owned by nobody else.
    let stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
    stream.set_nodelay(true)?;
    if let Some(ip) = src {
        let one: libc::c_int = 1;
        // SAFETY: valid fd, pointer to a c_int of the given size.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                &one as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let sa = sockaddr_in(SocketAddrV4::new(ip, 0));
        // SAFETY: valid fd and a properly sized sockaddr_in.
        let rc = unsafe {
            libc::bind(
                fd,
                &sa as *const libc::sockaddr_in as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let sa = sockaddr_in(addr);
    // SAFETY: valid fd and a properly sized sockaddr_in.
    let rc = unsafe {
        libc::connect(
            fd,
            &sa as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        return Ok((stream, false));
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINPROGRESS) {
        Ok((stream, true))
    } else {
        Err(e)
    }
}

fn sockaddr_in(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a.ip().octets()),
        },
        sin_zero: [0; 8],
    }
}

fn socket_error(fd: i32) -> io::Result<()> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: valid fd, out-pointers sized correctly.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err));
    }
    Ok(())
}

/// A keep-alive client connection on the current monoio runtime.
pub struct Conn {
    stream: TcpStream,
    reader: Reader,
}

impl Conn {
    /// Connects from `src` (or a source the kernel picks) to `addr`.
    pub async fn connect(addr: SocketAddrV4, src: Option<Ipv4Addr>) -> io::Result<Conn> {
        let (std_stream, pending) = start_connect(addr, src)?;
        let fd = std_stream.as_raw_fd();
        let stream = TcpStream::from_std(std_stream)?;
        if pending {
            stream.writable(false).await?;
        }
        socket_error(fd)?;
        if uring() {
            // io_uring operations expect blocking sockets (monoio creates its
            // own sockets that way); epoll needs them non-blocking.
            // SAFETY: fcntl on a valid fd.
            unsafe {
                let fl = libc::fcntl(fd, libc::F_GETFL);
                if fl >= 0 {
                    libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK);
                }
            }
        }
        Ok(Conn {
            stream,
            reader: Reader::default(),
        })
    }

    /// Writes a whole request; the buffer is handed back for reuse.
    pub async fn send(&mut self, req: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let (res, req) = self.stream.write_all(req).await;
        (res.map(|_| ()), req)
    }

    /// Reads more bytes into the reader; 0 means the server has closed.
    async fn fill(&mut self) -> io::Result<usize> {
        let buf = self.reader.take_for_read();
        let (len, cap) = (buf.len(), buf.capacity());
        let (res, slice) = self.stream.read(SliceMut::new(buf, len, cap)).await;
        self.reader.put_back(slice.into_inner());
        res
    }

    /// Reads exactly one answer.
    pub async fn recv(&mut self) -> io::Result<Resp> {
        let mut eof = false;
        // Each pass either parses an answer or reads more bytes; after the
        // end of the stream `next` answers or fails, so this ends.
        loop {
            if let Some(r) = self.reader.next(eof)? {
                return Ok(r);
            }
            eof = self.fill().await? == 0;
        }
    }

    /// Body of the last answer returned by `recv`.
    pub fn body(&self) -> &[u8] {
        self.reader.body()
    }

    /// Sends a request and reads its answer.
    pub async fn call(&mut self, req: Vec<u8>) -> (io::Result<Resp>, Vec<u8>) {
        let (r, req) = self.send(req).await;
        if let Err(e) = r {
            return (Err(e), req);
        }
        (self.recv().await, req)
    }
}

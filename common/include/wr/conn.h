/*
 * wr/conn.h: a byte-stream connection over a libuv TCP handle, either plain
 * TCP or TLS 1.3 (wolfSSL, ALPN "warren/1"). The same object carries tunnels
 * (TLS) and visitor/service sockets (plain), so relays treat both alike.
 *
 * Loop thread only. A connection is created by wr_conn_dial() or
 * wr_conn_accept() and lives until its on_close callback has returned; it is
 * freed right after. wr_conn_close() is idempotent.
 */
#ifndef WR_CONN_H
#define WR_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "wr/addr.h"
#include "wr/buf.h"
#include "wr/err.h"

#define WR_ALPN "warren/1"
/* Node-to-node peer links: mutual TLS, a protocol of their own so that an
 * agent can never land on a peer listener or a node on an agent listener. */
#define WR_ALPN_PEER "warren-peer/1"

struct wr_conn;
struct wr_tls_ctx;

/* All callbacks are optional except on_close, and are never called from inside
 * the wr_conn_* call that caused them. */
struct wr_conn_cbs {
    /* Dials: TCP connected and, with TLS, the handshake verified. Accepted TLS
     * connections: handshake done. Not called for accepted plain connections,
     * which are ready at once, unless they owe a PROXY header (proxy_from):
     * then it reports the header read. status < 0: failed (WR_ETLS, WR_EALPN,
     * WR_ETIMEDOUT, -ECONNREFUSED, WR_EPROTO for a bad PROXY header, ...); the
     * owner should close. Exactly once. */
    void (*on_ready)(struct wr_conn *c, int status, void *arg);
    /* Plaintext arrived. <data> is borrowed for the duration of the call only. */
    void (*on_read)(struct wr_conn *c, const uint8_t *data, size_t len, void *arg);
    /* The peer ended its direction (TCP FIN, or TLS close_notify). Once. */
    void (*on_eof)(struct wr_conn *c, void *arg);
    /* A fatal error on the connection (reset, TLS alert, bad record). The owner
     * should close. No on_read/on_eof follows. */
    void (*on_error)(struct wr_conn *c, int err, void *arg);
    /* The write queue fell to zero after having held data: resume producing. */
    void (*on_drain)(struct wr_conn *c, void *arg);
    /* Every handle is closed. <c> is freed when this returns. Required. */
    void (*on_close)(struct wr_conn *c, void *arg);
};

struct wr_conn_opts {
    struct wr_tls_ctx *tls;        /* NULL: plain TCP */
    const char *sni;               /* dials with TLS: server name to send (copied) */
    uint32_t handshake_timeout_ms; /* TLS, and the PROXY header if one is owed: both
                                      together within it; 0: 10000. On expiry
                                      on_ready(WR_ETIMEDOUT) */
    size_t max_queue;              /* cap on queued, unwritten bytes; 0: 64 MiB. Past it,
                                      wr_conn_write returns WR_ETOOBIG */
    bool nodelay;                  /* TCP_NODELAY; set it for tunnels and latency paths */
    /* Accepting only: a peer whose address lies in one of these <n_proxy_from>
     * networks (borrowed for the call) must begin with a PROXY v1 or v2
     * header (wr/proxy.h). It is read and stripped before anything else
     * (before the TLS handshake), on_ready follows it even for plain
     * connections, and the address in it replaces the peer's (see
     * wr_conn_peer_str). Other peers are not parsed at all. NULL/0: off, and
     * the accept path costs nothing more. */
    const struct wr_cidr *proxy_from;
    size_t n_proxy_from;
};

/* What became of the PROXY header of an accepted connection. */
enum wr_conn_proxy {
    WR_CONN_PROXY_OFF = 0, /* none expected: option off, or the peer is not trusted */
    WR_CONN_PROXY_WAITING, /* expected and not complete yet */
    WR_CONN_PROXY_OK,      /* read: wr_conn_peer_str is the client it names */
    WR_CONN_PROXY_LOCAL,   /* read: LOCAL or UNKNOWN, the socket's address stays */
    WR_CONN_PROXY_BAD,     /* missing, malformed, cut short or late: on_ready(<0) */
};

/* Starts a dial to <addr>. Returns NULL with *err set on immediate failure.
 * on_ready reports the outcome. Reading starts after on_ready(0). */
struct wr_conn *wr_conn_dial(uv_loop_t *loop, const struct sockaddr *addr,
                             const struct wr_conn_opts *opts, const struct wr_conn_cbs *cbs,
                             void *arg, int *err);

/* Accepts one pending connection from <server> (call from its connection_cb).
 * With opts->tls the server handshake starts at once; reading starts after
 * on_ready(0). Without TLS the connection is ready and reading has started. */
struct wr_conn *wr_conn_accept(uv_stream_t *server, const struct wr_conn_opts *opts,
                               const struct wr_conn_cbs *cbs, void *arg, int *err);

/* Takes a socket accepted outside libuv (accept4 on a listener's fd, see
 * nd_entry.c's drain) as if wr_conn_accept had accepted it. <fd> is owned
 * from the call on (closed on failure). */
struct wr_conn *wr_conn_adopt(uv_loop_t *loop, uv_os_sock_t fd, const struct wr_conn_opts *opts,
                              const struct wr_conn_cbs *cbs, void *arg, int *err);

/* Flow control for what we receive: stop/resume calling on_read. Data already
 * decrypted but not delivered is kept and delivered after read_start. */
int wr_conn_read_start(struct wr_conn *c);
int wr_conn_read_stop(struct wr_conn *c);

/* Queues <len> bytes (copied, or written through at once). Order is kept.
 * Data is handed to the kernel no later than the end of the current loop
 * iteration. Returns 0, WR_ECLOSED, WR_ETOOBIG (queue cap; the caller should
 * treat the peer as not reading), or WR_ENOMEM. */
WR_MUST_CHECK int wr_conn_write(struct wr_conn *c, const uint8_t *data, size_t len);
/* Same with several pieces, which go out as if concatenated (one TLS record
 * when they fit in one). */
WR_MUST_CHECK int wr_conn_writev(struct wr_conn *c, const struct wr_slice *v, int n);
/* Bytes accepted by wr_conn_write that the kernel has not taken yet. */
size_t wr_conn_write_queued(const struct wr_conn *c);

/* Half-close: after the queue is flushed, send FIN (plain) or close_notify
 * then FIN (TLS). Reading continues. Idempotent. */
int wr_conn_shutdown(struct wr_conn *c);

/* Closes. With <flush>, queued data is written first (for at most 2 s), so
 * an ERROR message can reach the peer; without, pending data is dropped and
 * a plain TCP connection is reset (RST) when <flush> is false and data was
 * pending. Idempotent; on_close follows, asynchronously, exactly once. */
void wr_conn_close(struct wr_conn *c, bool flush);

bool wr_conn_is_tls(const struct wr_conn *c);
/* True once on_ready(0) would have been (or was) reported. */
bool wr_conn_is_ready(const struct wr_conn *c);
/* The peer's address as "ip:port" (cached at accept/dial), or, once a PROXY
 * header naming a client was read (WR_CONN_PROXY_OK), that client's. */
const char *wr_conn_peer_str(const struct wr_conn *c);
/* The socket's own peer as "ip:port": the load balancer when a PROXY header
 * replaced the address, else the same as wr_conn_peer_str. */
const char *wr_conn_sock_peer_str(const struct wr_conn *c);
/* The PROXY header's fate; with WR_CONN_PROXY_BAD, *why (may be NULL) gets a
 * static reason: the parser's (wr_proxy_parse), "timeout", "closed before
 * the header" or "connection failed before the header". */
enum wr_conn_proxy wr_conn_get_proxy(const struct wr_conn *c, const char **why);
/* Server side, TLS: the SNI the client sent, or NULL. */
const char *wr_conn_sni(const struct wr_conn *c);
/* TLS, once ready: the peer certificate's common name (the node id), or NULL.
 * Dial side: the server's. Accept side: the client's, on a context that
 * requires client certificates (wr_tls_ctx_new_server_mtls); else NULL. */
const char *wr_conn_peer_cn(const struct wr_conn *c);
/* Negotiated cipher suite name, or NULL for plain TCP. */
const char *wr_conn_cipher(const struct wr_conn *c);
/* A small integer id for logs (conn=N), unique in the process. */
uint64_t wr_conn_id(const struct wr_conn *c);
/* Bytes of memory this connection holds right now (buffers, TLS state est.). */
size_t wr_conn_mem(const struct wr_conn *c);
/* The owner's pointer can be replaced (for handing a conn to a new owner). */
void wr_conn_set_cbs(struct wr_conn *c, const struct wr_conn_cbs *cbs, void *arg);

/* ---- TLS contexts (wolfSSL) ---------------------------------------------------- */

/* A server context: TLS 1.3 only, ALPN "warren/1" required (a client offering
 * other protocols, or none, fails with an alert), certificate and Ed25519 key
 * from PEM files. Returns NULL with *err set (the reason is logged once). */
struct wr_tls_ctx *wr_tls_ctx_new_server(const char *cert_pem, const char *key_pem, int *err);
/* A client context that verifies the server chain against <ca_pem>. */
struct wr_tls_ctx *wr_tls_ctx_new_client(const char *ca_pem, int *err);
/* Mutual TLS (node-to-node peer links), ALPN <alpn> (NULL: WR_ALPN; at most
 * 31 bytes) instead of "warren/1". The server presents <cert_pem>/<key_pem>,
 * requires a client certificate and verifies its chain against <ca_pem>: a
 * client without one, or with one the CA did not issue, fails the handshake.
 * The client presents its own certificate and verifies the server's chain the
 * same way. Neither checks names: the caller compares wr_conn_peer_cn() with
 * the identity it expects. NULL with *err set (the reason is logged once). */
struct wr_tls_ctx *wr_tls_ctx_new_server_mtls(const char *cert_pem, const char *key_pem,
                                              const char *ca_pem, const char *alpn, int *err);
struct wr_tls_ctx *wr_tls_ctx_new_client_mtls(const char *cert_pem, const char *key_pem,
                                              const char *ca_pem, const char *alpn, int *err);
void wr_tls_ctx_free(struct wr_tls_ctx *t);

/*
 * Record crypto: Debian's wolfSSL has no AES-NI, so AES-256-GCM records are
 * handed through a wolfSSL crypto-callback device to OpenSSL's libcrypto (the
 * default, ~5.5 GB/s here) or libsodium (WARREN_AESGCM=sodium, ~2.3 GB/s); see
 * wr_tls_aead_backend(). The suite is pinned to TLS13-AES256-GCM-SHA384 when
 * the CPU has AES-NI, else TLS13-CHACHA20-POLY1305-SHA256. These counters are
 * process-wide.
 */
struct wr_tls_stats {
    uint64_t dev_encrypt;   /* AES-GCM encryptions done by the device */
    uint64_t dev_decrypt;   /* AES-GCM decryptions done by the device */
    uint64_t dev_auth_fail; /* decryptions that failed authentication */
    uint64_t dev_bytes;     /* bytes through the device */
    uint64_t handshakes_ok;
    uint64_t handshakes_failed;
    uint64_t mem_reclaimed; /* bytes of all-zero wolfSSL session pages given back to
                               the kernel after handshakes (32 KiB a connection) */
};
void wr_tls_get_stats(struct wr_tls_stats *out);
/* True when the device is registered and AES-256-GCM is in use. */
bool wr_tls_aes_accelerated(void);
/* Name of the suite wr_tls pins: "TLS13-AES256-GCM-SHA384" or "TLS13-CHACHA20-POLY1305-SHA256". */
const char *wr_tls_suite(void);
/* The library that does the device's AES-256-GCM: "openssl" (libcrypto's EVP,
 * the default when it is usable) or "libsodium"; "none" when the device is not
 * in use (no AES-NI: the ChaCha20 suite runs in wolfSSL). Chosen once per
 * process; the environment variable WARREN_AESGCM=openssl|sodium overrides the
 * default (an unknown value is logged and ignored). Thread-safe. */
const char *wr_tls_aead_backend(void);

#endif

/*
 * Streams: a process's stdio or a port-forward connection, as the host reads and writes them.
 *
 * Output (rfd) is read into a buffer of at most STREAM_IN_LIMIT bytes; beyond that the agent stops reading, so a
 * process whose output nobody collects blocks on its pipe as it would under conmon with a full pipe. A parked
 * ReadStream is answered as soon as there is data or end-of-file. Input from the host is written to wfd; the
 * WriteStream is answered once all of it is written, which is the host's backpressure.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "agent.pb-c.h"

static struct stream *streams;
static uint32_t next_id = 1;

struct stream *stream_first(void) { return streams; }

struct stream *stream_new(int rfd, int wfd, bool socket)
{
    struct stream *s = xcalloc(1, sizeof *s);
    s->id = next_id++;
    s->rfd = rfd;
    s->wfd = wfd;
    s->socket = socket;
    if (rfd >= 0) set_nonblock(rfd);
    if (wfd >= 0) set_nonblock(wfd);
    s->next = streams;
    streams = s;
    return s;
}

struct stream *stream_find(uint32_t id)
{
    for (struct stream *s = streams; s; s = s->next)
        if (s->id == id) return s;
    return NULL;
}

/* Closes the write side; a socket shares its fd with the read side, so only shuts that direction. */
static void close_write_side(struct stream *s)
{
    if (s->wfd < 0) return;
    if (s->socket) shutdown(s->wfd, SHUT_WR);
    if (s->wfd != s->rfd) close(s->wfd);
    s->wfd = -1;
}

void stream_destroy(uint32_t id)
{
    for (struct stream **p = &streams; *p; p = &(*p)->next) {
        struct stream *s = *p;
        if (s->id != id) continue;
        *p = s->next;
        reply_error(&s->reader, CODE_NOT_FOUND, "stream %u was closed", id);
        reply_error(&s->writer, CODE_NOT_FOUND, "stream %u was closed", id);
        if (s->wfd >= 0 && s->wfd != s->rfd) close(s->wfd);
        if (s->rfd >= 0) close(s->rfd);
        buf_free(&s->in);
        buf_free(&s->out);
        free(s);
        return;
    }
}

/* A port-forward connection is done once both directions have ended and the host has seen the end. */
static void destroy_if_done(struct stream *s)
{
    if (s->socket && s->eof_delivered && s->wfd < 0) stream_destroy(s->id);
}

static void answer_reader(struct stream *s)
{
    if (!call_live(&s->reader) || (s->in.len == 0 && !s->eof)) return;
    Hull__Microvm__Agent__V1__ReadStreamResponse resp = HULL__MICROVM__AGENT__V1__READ_STREAM_RESPONSE__INIT;
    size_t n = s->in.len < s->reader_max ? s->in.len : s->reader_max;
    resp.data.data = s->in.data;
    resp.data.len = n;
    resp.eof = s->eof && n == s->in.len;
    reply_ok(&s->reader, &resp.base);
    buf_consume(&s->in, n);
    s->eof_delivered = resp.eof;
    destroy_if_done(s);
}

void stream_on_readable(struct stream *s)
{
    uint8_t chunk[16384];
    while (s->rfd >= 0 && !s->eof && s->in.len < STREAM_IN_LIMIT) {
        ssize_t n = read(s->rfd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n <= 0) {
            /* EOF, or EIO from a terminal whose last slave closed. */
            s->eof = true;
            break;
        }
        buf_append(&s->in, chunk, (size_t)n);
    }
    answer_reader(s);
}

void stream_on_writable(struct stream *s)
{
    while (s->wfd >= 0 && s->out.len > 0) {
        ssize_t n = write(s->wfd, s->out.data, s->out.len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n < 0) {
            /* The reader is gone (EPIPE): what is left cannot be delivered. */
            reply_error(&s->writer, CODE_FAILED_PRECONDITION, "stream %u: the other side is closed: %s", s->id,
                        strerror(errno));
            s->out.len = 0;
            close_write_side(s);
            return;
        }
        buf_consume(&s->out, (size_t)n);
    }
    if (s->out.len == 0) {
        reply_ok(&s->writer, NULL);
        if (s->close_pending) {
            close_write_side(s);
            destroy_if_done(s);
        }
    }
}

void stream_read(struct call *call, uint32_t id, uint32_t max)
{
    struct stream *s = stream_find(id);
    if (!s || s->rfd < 0) {
        reply_error(call, CODE_NOT_FOUND, "stream %u not found or not readable", id);
        return;
    }
    if (call_live(&s->reader)) {
        reply_error(call, CODE_FAILED_PRECONDITION, "stream %u already has a read waiting", id);
        return;
    }
    s->reader = *call;
    s->reader_max = max == 0 || max > STREAM_READ_MAX ? STREAM_READ_MAX : max;
    answer_reader(s);
}

void stream_write(struct call *call, uint32_t id, const uint8_t *data, size_t len)
{
    struct stream *s = stream_find(id);
    if (!s || s->wfd < 0) {
        reply_error(call, s ? CODE_FAILED_PRECONDITION : CODE_NOT_FOUND, "stream %u %s", id,
                    s ? "is closed for writing" : "not found");
        return;
    }
    if (call_live(&s->writer)) {
        reply_error(call, CODE_FAILED_PRECONDITION, "stream %u already has a write waiting", id);
        return;
    }
    s->writer = *call;
    buf_append(&s->out, data, len);
    stream_on_writable(s);
}

void stream_close(struct call *call, uint32_t id, bool both)
{
    struct stream *s = stream_find(id);
    if (!s) {
        reply_error(call, CODE_NOT_FOUND, "stream %u not found", id);
        return;
    }
    reply_ok(call, NULL);
    if (both && s->socket) stream_destroy(id);
    else if (s->out.len > 0) s->close_pending = true;
    else {
        close_write_side(s);
        destroy_if_done(s);
    }
}

void streams_forget_calls(void)
{
    for (struct stream *s = streams; s; s = s->next) {
        s->reader.active = false;
        s->writer.active = false;
    }
}

/* Dials 127.0.0.1:port, then [::1]:port, inside the guest (the pod's network namespace). */
void port_forward(struct call *call, uint32_t port)
{
    if (port == 0 || port > 65535) {
        reply_error(call, CODE_INVALID_ARGUMENT, "port %u is out of range 1..65535", port);
        return;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int err = 0;
    if (fd < 0 || connect(fd, (struct sockaddr *)&v4, sizeof v4) < 0) {
        err = errno;
        if (fd >= 0) close(fd);
        struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
        v6.sin6_addr = in6addr_loopback;
        fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&v6, sizeof v6) < 0) {
            if (fd >= 0) close(fd);
            reply_error(call, CODE_UNAVAILABLE, "cannot connect to port %u in the pod: %s", port, strerror(err));
            return;
        }
    }
    struct stream *s = stream_new(fd, fd, true);
    Hull__Microvm__Agent__V1__PortForwardResponse resp = HULL__MICROVM__AGENT__V1__PORT_FORWARD_RESPONSE__INIT;
    resp.stream_id = s->id;
    reply_ok(call, &resp.base);
}

/*
 * The host channel: ttrpc frames over the virtio-serial port named "hull.agent".
 *
 * Frame: uint32 BE data length, uint32 BE stream id, uint8 type (1 request, 2 response, 3 data), uint8 flags,
 * then the data. A request carries a ttrpc.Request (service, method, payload); the answer is one response frame
 * on the same stream with a ttrpc.Response (status, payload). The agent is a server only: it sends nothing
 * but responses.
 *
 * virtio-serial has no connection of its own: the port reports POLLHUP while no host process has qemu's
 * chardev socket open. The agent then drops what it had half read or not yet sent and every parked call (the
 * host asks again once it reconnects), and looks at the port again a little later.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "ttrpc_envelope.pb-c.h"

#define PORT_NAME "hull.agent"
#define FRAME_HEADER 10
#define MAX_FRAME (4 * 1024 * 1024)
#define TYPE_REQUEST 1
#define TYPE_RESPONSE 2

static int chan = -1;
static uint32_t generation = 1;
static bool connected;
static struct buf inbuf, outbuf;

/* /sys/class/virtio-ports/vportNpM/name holds the port's name; the device is /dev/vportNpM. */
static int find_port(char *dev, size_t size)
{
    DIR *dir = opendir("/sys/class/virtio-ports");
    if (!dir) return -1;
    struct dirent *e;
    int rc = -1;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.') continue;
        char path[512];
        snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", e->d_name);
        char *name = read_file(path, 64);
        if (!name) continue;
        name[strcspn(name, "\n")] = 0;
        bool match = strcmp(name, PORT_NAME) == 0;
        free(name);
        if (match) {
            snprintf(dev, size, "/dev/%s", e->d_name);
            rc = 0;
            break;
        }
    }
    closedir(dir);
    return rc;
}

int channel_open(void)
{
    char dev[300];
    /* The port shows up once virtio_console has probed it; give it a few seconds. */
    for (int i = 0; i < 100; i++) {
        if (find_port(dev, sizeof dev) == 0) {
            chan = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC);
            if (chan >= 0) {
                log_msg("host channel is %s", dev);
                return 0;
            }
        }
        usleep(50000);
    }
    log_msg("no virtio-serial port named %s", PORT_NAME);
    return -1;
}

int channel_fd(void) { return chan; }
bool channel_wants_write(void) { return connected && outbuf.len > 0; }
bool channel_connected(void) { return connected; }

bool call_live(const struct call *call) { return call->active && call->gen == generation; }

void channel_on_hangup(void)
{
    if (connected) log_msg("host disconnected; dropping parked calls");
    connected = false;
    generation++;
    inbuf.len = 0;
    outbuf.len = 0;
    streams_forget_calls();
    processes_forget_calls();
}

static void handle_frame(uint32_t stream, uint8_t type, const uint8_t *data, size_t len)
{
    if (type != TYPE_REQUEST) return; /* no streaming calls in this API */
    Ttrpc__Request *req = ttrpc__request__unpack(NULL, len, data);
    struct call call = {.stream = stream, .gen = generation, .active = true};
    if (!req) {
        reply_error(&call, CODE_INVALID_ARGUMENT, "cannot decode the ttrpc request");
        return;
    }
    dispatch(&call, req->service, req->method, req->payload.data, req->payload.len);
    ttrpc__request__free_unpacked(req, NULL);
}

void channel_on_readable(void)
{
    if (!connected) {
        connected = true;
        log_msg("host connected");
    }
    uint8_t chunk[65536];
    for (;;) {
        ssize_t n = read(chan, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        buf_append(&inbuf, chunk, (size_t)n);
    }
    size_t pos = 0;
    while (inbuf.len - pos >= FRAME_HEADER) {
        const uint8_t *h = inbuf.data + pos;
        uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        uint32_t stream = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
        if (len > MAX_FRAME) {
            log_msg("frame of %u bytes is over the 4 MiB limit; resetting the channel", len);
            channel_on_hangup();
            connected = true;
            return;
        }
        if (inbuf.len - pos < FRAME_HEADER + (size_t)len) break;
        handle_frame(stream, h[8], h + FRAME_HEADER, len);
        pos += FRAME_HEADER + len;
    }
    buf_consume(&inbuf, pos);
}

void channel_on_writable(void)
{
    while (outbuf.len > 0) {
        ssize_t n = write(chan, outbuf.data, outbuf.len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return; /* EAGAIN: poll says when */
        buf_consume(&outbuf, (size_t)n);
    }
}

void channel_flush_blocking(int timeout_ms)
{
    struct pollfd p = {.fd = chan, .events = POLLOUT};
    while (connected && outbuf.len > 0 && poll(&p, 1, timeout_ms) > 0 && !(p.revents & (POLLHUP | POLLERR)))
        channel_on_writable();
}

static void send_response(struct call *call, int code, const char *message, const ProtobufCMessage *payload)
{
    if (!call_live(call)) return;
    call->active = false;
    Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
    Ttrpc__Status status = TTRPC__STATUS__INIT;
    status.code = code;
    status.message = (char *)message;
    resp.status = &status;
    uint8_t *payload_bytes = NULL;
    if (payload) {
        size_t plen = protobuf_c_message_get_packed_size(payload);
        payload_bytes = xmalloc(plen);
        protobuf_c_message_pack(payload, payload_bytes);
        resp.payload.data = payload_bytes;
        resp.payload.len = plen;
    }
    size_t len = ttrpc__response__get_packed_size(&resp);
    uint8_t *frame = xmalloc(FRAME_HEADER + len);
    frame[0] = (uint8_t)(len >> 24);
    frame[1] = (uint8_t)(len >> 16);
    frame[2] = (uint8_t)(len >> 8);
    frame[3] = (uint8_t)len;
    frame[4] = (uint8_t)(call->stream >> 24);
    frame[5] = (uint8_t)(call->stream >> 16);
    frame[6] = (uint8_t)(call->stream >> 8);
    frame[7] = (uint8_t)call->stream;
    frame[8] = TYPE_RESPONSE;
    frame[9] = 0;
    ttrpc__response__pack(&resp, frame + FRAME_HEADER);
    buf_append(&outbuf, frame, FRAME_HEADER + len);
    free(frame);
    free(payload_bytes);
    channel_on_writable();
}

void reply_ok(struct call *call, const ProtobufCMessage *payload) { send_response(call, CODE_OK, "", payload); }

void reply_error(struct call *call, enum code code, const char *fmt, ...)
{
    char message[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    send_response(call, (int)code, message, NULL);
}

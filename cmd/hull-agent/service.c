/* The Agent service: decodes each call and hands it to processes, streams or the sandbox set-up below. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "agent.pb-c.h"

#define SERVICE "hull.microvm.agent.v1.Agent"
#define IP_BIN "/bin/ip"
#define DEFAULT_SHM_SIZE (64ULL * 1024 * 1024)

typedef Hull__Microvm__Agent__V1__PingResponse PingResponse;
typedef Hull__Microvm__Agent__V1__SetupSandboxRequest SetupSandboxRequest;
typedef Hull__Microvm__Agent__V1__CreateContainerRequest CreateContainerRequest;
typedef Hull__Microvm__Agent__V1__ContainerRequest ContainerRequest;
typedef Hull__Microvm__Agent__V1__ProcessRequest ProcessRequest;
typedef Hull__Microvm__Agent__V1__ExecProcessRequest ExecProcessRequest;
typedef Hull__Microvm__Agent__V1__SignalProcessRequest SignalProcessRequest;
typedef Hull__Microvm__Agent__V1__UpdateContainerRequest UpdateContainerRequest;
typedef Hull__Microvm__Agent__V1__StatsResponse StatsResponse;
typedef Hull__Microvm__Agent__V1__ReadStreamRequest ReadStreamRequest;
typedef Hull__Microvm__Agent__V1__WriteStreamRequest WriteStreamRequest;
typedef Hull__Microvm__Agent__V1__StreamRequest StreamRequest;
typedef Hull__Microvm__Agent__V1__ResizeTtyRequest ResizeTtyRequest;
typedef Hull__Microvm__Agent__V1__PortForwardRequest PortForwardRequest;
typedef Hull__Microvm__Agent__V1__ProcessInfo ProcessInfo;
typedef Hull__Microvm__Agent__V1__ProcessStarted ProcessStarted;
typedef Hull__Microvm__Agent__V1__ProcessExit ProcessExit;
typedef Hull__Microvm__Agent__V1__ListProcessesResponse ListProcessesResponse;

static bool poweroff;

void request_poweroff(void) { poweroff = true; }
bool poweroff_requested(void) { return poweroff; }

/* ---------------------------------------------------------------- ping */

static void do_ping(struct call *call, const void *msg)
{
    (void)msg;
    struct utsname u;
    uname(&u);
    PingResponse r = HULL__MICROVM__AGENT__V1__PING_RESPONSE__INIT;
    r.agent_version = AGENT_VERSION;
    r.kernel_release = u.release;
    char *uptime = read_file("/proc/uptime", 64);
    r.uptime_seconds = uptime ? atof(uptime) : 0;
    free(uptime);
    reply_ok(call, &r.base);
}

/* ---------------------------------------------------------------- sandbox set-up */

/* Values go to ip(8) as single arguments; this keeps one from being read as an option. */
static bool token_ok(const char *s, const char *allowed, size_t max)
{
    size_t len = strlen(s);
    if (len == 0 || len > max || s[0] == '-') return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(allowed, *p)) return false;
    return true;
}

/* The interface whose MAC address is mac (lower case), or NULL. */
static char *interface_by_mac(const char *mac)
{
    DIR *dir = opendir("/sys/class/net");
    if (!dir) return NULL;
    struct dirent *e;
    char *found = NULL;
    while (!found && (e = readdir(dir))) {
        if (e->d_name[0] == '.') continue;
        char path[512];
        snprintf(path, sizeof path, "/sys/class/net/%s/address", e->d_name);
        char *addr = read_file(path, 64);
        if (!addr) continue;
        addr[strcspn(addr, "\n")] = 0;
        if (!strcasecmp(addr, mac)) found = xstrdup(e->d_name);
        free(addr);
    }
    closedir(dir);
    return found;
}

/* Runs ip with the given arguments; on failure answers the call and returns false. */
static bool ip(struct call *call, const char *const args[])
{
    const char *argv[16] = {IP_BIN};
    int n = 1;
    for (int i = 0; args[i] && n < 15; i++) argv[n++] = args[i];
    argv[n] = NULL;
    char *output = NULL;
    int status = run_sync((char *const *)argv, &output);
    bool ok = status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok) {
        char cmd[512] = "";
        for (int i = 0; argv[i]; i++) {
            strncat(cmd, argv[i], sizeof cmd - strlen(cmd) - 2);
            strcat(cmd, " ");
        }
        if (output) output[strcspn(output, "\n")] = 0;
        reply_error(call, CODE_INTERNAL, "%s: %s", cmd, output ? output : "");
    }
    free(output);
    return ok;
}

static bool setup_interface(struct call *call, const Hull__Microvm__Agent__V1__Interface *itf)
{
    if (!token_ok(itf->mac, ":", 17) || !token_ok(itf->name, "_.-", 15)) {
        reply_error(call, CODE_INVALID_ARGUMENT, "interface \"%s\" with MAC \"%s\" is not valid", itf->name, itf->mac);
        return false;
    }
    char *current = interface_by_mac(itf->mac);
    if (!current) {
        reply_error(call, CODE_NOT_FOUND, "the guest has no interface with MAC %s", itf->mac);
        return false;
    }
    bool ok = true;
    if (strcmp(current, itf->name)) {
        const char *rename[] = {"link", "set", "dev", current, "name", itf->name, NULL};
        ok = ip(call, rename);
    }
    free(current);
    char mtu[16];
    snprintf(mtu, sizeof mtu, "%u", itf->mtu);
    if (ok && itf->mtu > 0) {
        const char *set_mtu[] = {"link", "set", "dev", itf->name, "mtu", mtu, NULL};
        ok = ip(call, set_mtu);
    }
    for (size_t i = 0; ok && i < itf->n_addresses; i++) {
        if (!token_ok(itf->addresses[i], ":./", 64)) {
            reply_error(call, CODE_INVALID_ARGUMENT, "address \"%s\" is not valid", itf->addresses[i]);
            return false;
        }
        const char *add[] = {"addr", "add", itf->addresses[i], "dev", itf->name, NULL};
        ok = ip(call, add);
    }
    if (ok) {
        const char *up[] = {"link", "set", "dev", itf->name, "up", NULL};
        ok = ip(call, up);
    }
    return ok;
}

static bool setup_route(struct call *call, const Hull__Microvm__Agent__V1__Route *r)
{
    bool v6 = strchr(r->destination, ':') || strchr(r->gateway, ':');
    if (!token_ok(r->destination, ":./", 64) || (r->gateway[0] && !token_ok(r->gateway, ":.", 64)) ||
        (r->device[0] && !token_ok(r->device, "_.-", 15))) {
        reply_error(call, CODE_INVALID_ARGUMENT, "route to \"%s\" via \"%s\" is not valid", r->destination, r->gateway);
        return false;
    }
    const char *dest = !strcmp(r->destination, "0.0.0.0/0") || !strcmp(r->destination, "::/0") ? "default"
                                                                                                  : r->destination;
    const char *args[12];
    int n = 0;
    if (v6) args[n++] = "-6";
    args[n++] = "route";
    args[n++] = "add";
    args[n++] = dest;
    if (r->gateway[0]) {
        args[n++] = "via";
        args[n++] = r->gateway;
    }
    if (r->device[0]) {
        args[n++] = "dev";
        args[n++] = r->device;
    }
    args[n] = NULL;
    return ip(call, args);
}

/* net.ipv4.ip_forward -> /proc/sys/net/ipv4/ip_forward (a key with '/' or ".." is refused). */
static bool set_sysctl(struct call *call, const char *key, const char *value)
{
    if (!token_ok(key, "._-", 200) || strstr(key, "..")) {
        reply_error(call, CODE_INVALID_ARGUMENT, "sysctl \"%s\" is not valid", key);
        return false;
    }
    char path[256] = "/proc/sys/";
    for (const char *p = key; *p && strlen(path) < sizeof path - 1; p++) {
        size_t n = strlen(path);
        path[n] = *p == '.' ? '/' : *p;
        path[n + 1] = 0;
    }
    if (write_file(path, value, strlen(value)) < 0) {
        reply_error(call, CODE_INVALID_ARGUMENT, "sysctl %s=%s: %s", key, value, strerror(errno));
        return false;
    }
    return true;
}

static void do_setup_sandbox(struct call *call, const void *msg)
{
    const SetupSandboxRequest *req = msg;
    if (req->hostname[0] && sethostname(req->hostname, strlen(req->hostname)) < 0) {
        reply_error(call, CODE_INVALID_ARGUMENT, "hostname \"%s\": %s", req->hostname, strerror(errno));
        return;
    }
    const char *lo[] = {"link", "set", "dev", "lo", "up", NULL};
    if (!ip(call, lo)) return;
    for (size_t i = 0; i < req->n_interfaces; i++)
        if (!setup_interface(call, req->interfaces[i])) return;
    for (size_t i = 0; i < req->n_routes; i++)
        if (!setup_route(call, req->routes[i])) return;
    for (size_t i = 0; i < req->n_sysctls; i++)
        if (!set_sysctl(call, req->sysctls[i]->key, req->sysctls[i]->value)) return;
    /* The pod's /dev/shm: one tmpfs every container binds. */
    char options[64];
    snprintf(options, sizeof options, "mode=1777,size=%llu",
             (unsigned long long)(req->shm_size_bytes ? req->shm_size_bytes : DEFAULT_SHM_SIZE));
    umount2(SHM_DIR, MNT_DETACH);
    if (mkdir_p(SHM_DIR, 0755) < 0 || mount("shm", SHM_DIR, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options) < 0) {
        reply_error(call, CODE_INTERNAL, "mounting the pod's shm at %s: %s", SHM_DIR, strerror(errno));
        return;
    }
    log_msg("sandbox set up: hostname %s, %zu interface(s), %zu route(s)", req->hostname, req->n_interfaces,
            req->n_routes);
    reply_ok(call, NULL);
}

/* ---------------------------------------------------------------- stats, list */

static uint64_t cgroup_value(const char *id, const char *file, const char *key)
{
    char path[512];
    snprintf(path, sizeof path, CGROUP_ROOT "/" CGROUP_PARENT "/%s/%s", id, file);
    char *text = read_file(path, 8192);
    if (!text) return 0;
    uint64_t value = 0;
    if (!key) {
        value = strncmp(text, "max", 3) ? strtoull(text, NULL, 10) : 0;
    } else {
        size_t klen = strlen(key);
        for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
            if (!strncmp(line, key, klen) && line[klen] == ' ') {
                value = strtoull(line + klen + 1, NULL, 10);
                break;
            }
    }
    free(text);
    return value;
}

static void do_stats(struct call *call, const void *msg)
{
    const ContainerRequest *req = msg;
    if (!process_find(req->container_id, "")) {
        reply_error(call, CODE_NOT_FOUND, "container \"%s\" not found", req->container_id);
        return;
    }
    StatsResponse r = HULL__MICROVM__AGENT__V1__STATS_RESPONSE__INIT;
    r.cpu_usage_nanos = cgroup_value(req->container_id, "cpu.stat", "usage_usec") * 1000;
    r.memory_usage_bytes = cgroup_value(req->container_id, "memory.current", NULL);
    uint64_t inactive = cgroup_value(req->container_id, "memory.stat", "inactive_file");
    r.memory_working_set_bytes = r.memory_usage_bytes > inactive ? r.memory_usage_bytes - inactive : 0;
    r.memory_limit_bytes = cgroup_value(req->container_id, "memory.max", NULL);
    r.pids = cgroup_value(req->container_id, "pids.current", NULL);
    r.timestamp_unix_nano = now_unix_nano();
    reply_ok(call, &r.base);
}

static void do_list(struct call *call, const void *msg)
{
    (void)msg;
    size_t n = 0;
    for (struct process *p = process_first(); p; p = p->next) n++;
    ProcessInfo *infos = xcalloc(n, sizeof *infos);
    ProcessInfo **ptrs = xcalloc(n, sizeof *ptrs);
    ProcessExit *exits = xcalloc(n, sizeof *exits);
    ProcessStarted *streams = xcalloc(n, sizeof *streams);
    size_t i = 0;
    for (struct process *p = process_first(); p; p = p->next, i++) {
        hull__microvm__agent__v1__process_info__init(&infos[i]);
        hull__microvm__agent__v1__process_exit__init(&exits[i]);
        hull__microvm__agent__v1__process_started__init(&streams[i]);
        infos[i].container_id = p->container_id;
        infos[i].exec_id = p->exec_id;
        infos[i].pid = (uint32_t)p->pid;
        infos[i].status = p->status == PROC_EXITED    ? HULL__MICROVM__AGENT__V1__PROCESS_STATUS__PROCESS_STATUS_EXITED
                          : p->status == PROC_RUNNING ? HULL__MICROVM__AGENT__V1__PROCESS_STATUS__PROCESS_STATUS_RUNNING
                          : p->status == PROC_CREATED ? HULL__MICROVM__AGENT__V1__PROCESS_STATUS__PROCESS_STATUS_CREATED
                                                      : HULL__MICROVM__AGENT__V1__PROCESS_STATUS__PROCESS_STATUS_UNKNOWN;
        if (p->status == PROC_EXITED) {
            exits[i].exit_code = p->exit_code;
            exits[i].exited_at_unix_nano = p->exited_at;
            exits[i].oom_killed = p->oom_killed;
            infos[i].exit = &exits[i];
        }
        streams[i].pid = (uint32_t)p->pid;
        streams[i].stdin_stream = p->stdin_stream;
        streams[i].stdout_stream = p->stdout_stream;
        streams[i].stderr_stream = p->stderr_stream;
        infos[i].streams = &streams[i];
        ptrs[i] = &infos[i];
    }
    ListProcessesResponse r = HULL__MICROVM__AGENT__V1__LIST_PROCESSES_RESPONSE__INIT;
    r.n_processes = n;
    r.processes = ptrs;
    reply_ok(call, &r.base);
    free(infos);
    free(ptrs);
    free(exits);
    free(streams);
}

/* ---------------------------------------------------------------- the rest: thin adapters */

static void do_create(struct call *call, const void *msg)
{
    const CreateContainerRequest *r = msg;
    process_create(call, r->container_id, r->oci_config.data, r->oci_config.len, r->terminal, r->stdin);
}

static void do_start(struct call *call, const void *msg)
{
    process_start(call, ((const ContainerRequest *)msg)->container_id);
}

static void do_exec(struct call *call, const void *msg)
{
    const ExecProcessRequest *r = msg;
    process_exec(call, r->container_id, r->exec_id, r->oci_process.data, r->oci_process.len, r->terminal, r->stdin);
}

static void do_signal(struct call *call, const void *msg)
{
    const SignalProcessRequest *r = msg;
    process_signal(call, r->container_id, r->exec_id, r->signal, r->all);
}

static void do_wait(struct call *call, const void *msg)
{
    const ProcessRequest *r = msg;
    process_wait(call, r->container_id, r->exec_id);
}

static void do_delete_process(struct call *call, const void *msg)
{
    const ProcessRequest *r = msg;
    process_delete(call, r->container_id, r->exec_id);
}

static void do_delete_container(struct call *call, const void *msg)
{
    container_delete(call, ((const ContainerRequest *)msg)->container_id);
}

static void do_update(struct call *call, const void *msg)
{
    const UpdateContainerRequest *r = msg;
    container_update(call, r->container_id, r->oci_resources.data, r->oci_resources.len);
}

static void do_read(struct call *call, const void *msg)
{
    const ReadStreamRequest *r = msg;
    stream_read(call, r->stream_id, r->max_bytes);
}

static void do_write(struct call *call, const void *msg)
{
    const WriteStreamRequest *r = msg;
    stream_write(call, r->stream_id, r->data.data, r->data.len);
}

static void do_close(struct call *call, const void *msg)
{
    const StreamRequest *r = msg;
    stream_close(call, r->stream_id, r->both);
}

static void do_resize(struct call *call, const void *msg)
{
    const ResizeTtyRequest *r = msg;
    process_resize(call, r->container_id, r->exec_id, r->width, r->height);
}

static void do_port_forward(struct call *call, const void *msg)
{
    port_forward(call, ((const PortForwardRequest *)msg)->port);
}

static void do_shutdown(struct call *call, const void *msg)
{
    (void)msg;
    log_msg("shutdown requested");
    reply_ok(call, NULL);
    request_poweroff();
}

static const struct method {
    const char *name;
    const ProtobufCMessageDescriptor *input;
    void (*handle)(struct call *call, const void *msg);
} methods[] = {
    {"Ping", &hull__microvm__agent__v1__ping_request__descriptor, do_ping},
    {"SetupSandbox", &hull__microvm__agent__v1__setup_sandbox_request__descriptor, do_setup_sandbox},
    {"CreateContainer", &hull__microvm__agent__v1__create_container_request__descriptor, do_create},
    {"StartContainer", &hull__microvm__agent__v1__container_request__descriptor, do_start},
    {"ExecProcess", &hull__microvm__agent__v1__exec_process_request__descriptor, do_exec},
    {"SignalProcess", &hull__microvm__agent__v1__signal_process_request__descriptor, do_signal},
    {"WaitProcess", &hull__microvm__agent__v1__process_request__descriptor, do_wait},
    {"DeleteProcess", &hull__microvm__agent__v1__process_request__descriptor, do_delete_process},
    {"DeleteContainer", &hull__microvm__agent__v1__container_request__descriptor, do_delete_container},
    {"UpdateContainer", &hull__microvm__agent__v1__update_container_request__descriptor, do_update},
    {"Stats", &hull__microvm__agent__v1__container_request__descriptor, do_stats},
    {"ListProcesses", &hull__microvm__agent__v1__empty__descriptor, do_list},
    {"ReadStream", &hull__microvm__agent__v1__read_stream_request__descriptor, do_read},
    {"WriteStream", &hull__microvm__agent__v1__write_stream_request__descriptor, do_write},
    {"CloseStream", &hull__microvm__agent__v1__stream_request__descriptor, do_close},
    {"ResizeTty", &hull__microvm__agent__v1__resize_tty_request__descriptor, do_resize},
    {"PortForward", &hull__microvm__agent__v1__port_forward_request__descriptor, do_port_forward},
    {"Shutdown", &hull__microvm__agent__v1__empty__descriptor, do_shutdown},
};

void dispatch(struct call *call, const char *service, const char *method, const uint8_t *payload, size_t len)
{
    if (strcmp(service, SERVICE)) {
        reply_error(call, CODE_UNIMPLEMENTED, "service %s is not served here (this is %s)", service, SERVICE);
        return;
    }
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (strcmp(methods[i].name, method)) continue;
        ProtobufCMessage *msg = protobuf_c_message_unpack(methods[i].input, NULL, len, payload);
        if (!msg) {
            reply_error(call, CODE_INVALID_ARGUMENT, "%s: cannot decode the request", method);
            return;
        }
        methods[i].handle(call, msg);
        protobuf_c_message_free_unpacked(msg, NULL);
        return;
    }
    reply_error(call, CODE_UNIMPLEMENTED, "method %s/%s is not implemented", service, method);
}

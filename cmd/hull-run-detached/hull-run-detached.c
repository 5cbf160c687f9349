/*
 * hull-run-detached: the OCI runtime conmon runs when hulld creates and starts a container in one step.
 *
 *   HULL_OCI_RUNTIME=/usr/sbin/runc hull-run-detached [GLOBAL OPTION]... create [OPTION]... ID
 *
 * conmon always asks its runtime to "create"; the container then waits for a separate "start", a second run of the
 * runtime (runc is a Go program: about 25 ms here, a third of a container's start). The kubelet starts every container
 * right after creating it, and hulld makes a container's task only in StartContainer, so it wants both at once. This
 * execs HULL_OCI_RUNTIME with the same arguments, except that the first "create" becomes "run --detach", which every
 * OCI runtime conmon runs (runc, crun, runsc) accepts with the same options; conmon handles a runtime that
 * returns with the container running, as it does for "restore". Global options must be one argument each
 * ("--root=DIR"), as hulld passes them, so that no option's value is taken for the command.
 *
 * Written in C because it runs once per container start, between conmon and the runtime: a static binary execs in well
 * under a millisecond, a shell script or a .NET program would not, and no packaged tool rewrites arguments this way.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *runtime = getenv("HULL_OCI_RUNTIME");
    if (runtime == NULL || runtime[0] != '/') {
        fprintf(stderr, "hull-run-detached: HULL_OCI_RUNTIME must be the OCI runtime's absolute path\n");
        return 127;
    }
    /* One more slot for "--detach" and one for the terminating NULL. */
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (args == NULL) {
        fprintf(stderr, "hull-run-detached: out of memory\n");
        return 127;
    }
    int count = 0, replaced = 0;
    args[count++] = (char *)runtime;
    for (int i = 1; i < argc; i++) {
        if (!replaced && strcmp(argv[i], "create") == 0) {
            args[count++] = "run";
            args[count++] = "--detach";
            replaced = 1;
        } else {
            args[count++] = argv[i];
        }
    }
    if (!replaced) {
        fprintf(stderr, "hull-run-detached: no \"create\" command among the arguments\n");
        return 127;
    }
    unsetenv("HULL_OCI_RUNTIME");
    execv(runtime, args);
    fprintf(stderr, "hull-run-detached: cannot run %s: %s\n", runtime, strerror(errno));
    return 127;
}

/*
 * probe: a tiny static helper copied into the test rootfs as /probe.
 *
 * Each subcommand makes one system call (or a small loop of them) and prints
 * one stable result line, "<name>: ok" or "<name>: errno=N (ENAME)", so the
 * Rust tests can assert on what the kernel allowed inside the container
 * ("readlink: ok TARGET" adds the link's target).
 * Exit status: 0 when the call succeeded, 1 when it failed, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static const char *ename(int e)
{
	const char *n = strerrorname_np(e);
	return n ? n : "?";
}

static int report(const char *what, long rc)
{
	if (rc >= 0) {
		printf("%s: ok\n", what);
		fflush(stdout);
		return 0;
	}
	int e = errno;
	printf("%s: errno=%d (%s)\n", what, e, ename(e));
	fflush(stdout);
	return 1;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* Print the open fds (without the directory fd used to list them), each fd's
 * target, and the cwd. */
static int list_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return report("fds", -1);
	int fds[1024], n = 0, self = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < 1024) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		if (fd != self)
			fds[n++] = fd;
	}
	qsort(fds, n, sizeof(int), cmp_int);
	printf("fds:");
	for (int i = 0; i < n; i++)
		printf(" %d", fds[i]);
	printf("\n");
	for (int i = 0; i < n; i++) {
		char p[64], t[PATH_MAX];
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fds[i]);
		ssize_t l = readlink(p, t, sizeof(t) - 1);
		t[l < 0 ? 0 : l] = 0;
		printf("fd %d -> %s\n", fds[i], t);
	}
	closedir(d);
	char cwd[PATH_MAX];
	ssize_t l = readlink("/proc/self/cwd", cwd, sizeof(cwd) - 1);
	cwd[l < 0 ? 0 : l] = 0;
	printf("cwd: %s\n", cwd);
	fflush(stdout);
	return 0;
}

/* Allocate and touch `mb` MiB, reporting progress every 16 MiB. */
static int alloc(long mb)
{
	for (long i = 0; i < mb; i++) {
		char *p = malloc(1 << 20);
		if (!p)
			return report("alloc", -1);
		memset(p, 0x5a, 1 << 20);
		if ((i + 1) % 16 == 0) {
			printf("alloc: %ld MiB\n", i + 1);
			fflush(stdout);
		}
	}
	printf("alloc: ok\n");
	fflush(stdout);
	return 0;
}

/* Fork up to n children that wait; report how many forks succeeded and the
 * errno of the first failure; then reap them. */
static int forkbomb(int n)
{
	pid_t kids[4096];
	int forked = 0, err = 0;
	if (n > 4096)
		n = 4096;
	for (int i = 0; i < n; i++) {
		pid_t p = fork();
		if (p == 0) {
			pause();
			_exit(0);
		}
		if (p < 0) {
			err = errno;
			break;
		}
		kids[forked++] = p;
	}
	for (int i = 0; i < forked; i++)
		kill(kids[i], SIGKILL);
	for (int i = 0; i < forked; i++)
		waitpid(kids[i], NULL, 0);
	if (err)
		printf("forkbomb: forked=%d errno=%d (%s)\n", forked, err, ename(err));
	else
		printf("forkbomb: forked=%d ok\n", forked);
	fflush(stdout);
	return err ? 1 : 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: probe keyctl | mkdir P | unshare-user | socket-vsock | mknod P |"
			" raw-socket | touch P | write P DATA | alloc MB | forkbomb N | fds |"
			" readlink P | open P | open-path P\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	const char *c = argv[1];
	const char *a = argc > 2 ? argv[2] : NULL;
	if (!strcmp(c, "keyctl")) /* KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING */
		return report("keyctl", syscall(SYS_keyctl, 0, -3, 0));
	if (!strcmp(c, "mkdir") && a)
		return report("mkdir", mkdir(a, 0755));
	if (!strcmp(c, "unshare-user"))
		return report("unshare-user", unshare(CLONE_NEWUSER));
	if (!strcmp(c, "socket-vsock"))
		return report("socket-vsock", socket(AF_VSOCK, SOCK_STREAM, 0));
	if (!strcmp(c, "mknod") && a)
		return report("mknod", mknod(a, S_IFCHR | 0600, makedev(1, 3)));
	if (!strcmp(c, "raw-socket"))
		return report("raw-socket", socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
	if (!strcmp(c, "touch") && a)
		return report("touch", open(a, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	if (!strcmp(c, "write") && a && argc > 3) {
		int fd = open(a, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return report("write", -1);
		return report("write", write(fd, argv[3], strlen(argv[3])));
	}
	if (!strcmp(c, "readlink") && a) {
		char t[PATH_MAX];
		ssize_t l = readlink(a, t, sizeof(t) - 1);
		if (l >= 0) {
			t[l] = 0;
			printf("readlink: ok %s\n", t);
			fflush(stdout);
			return 0;
		}
		return report("readlink", -1);
	}
	if (!strcmp(c, "open") && a)
		return report("open", open(a, O_RDONLY | O_CLOEXEC));
	if (!strcmp(c, "open-path") && a)
		return report("open-path", open(a, O_PATH | O_CLOEXEC));
	if (!strcmp(c, "alloc") && a)
		return alloc(atol(a));
	if (!strcmp(c, "forkbomb") && a)
		return forkbomb(atoi(a));
	if (!strcmp(c, "fds"))
		return list_fds();
	return usage();
}

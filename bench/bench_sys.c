/*
 * bench_sys: /proc sampling, the relay's /metrics and fd limits (see
 * bench_sys.h).
 */
#include "bench/bench_sys.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BENCH_METRICS_MAX (256 * 1024)
#define BENCH_METRICS_MS 2000

static int bench_proc_stat(pid_t pid, struct bench_proc *out)
{
	char path[64], buf[1024];
	unsigned long long ut, st;
	const char *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), pid ? "/proc/%d/stat" : "/proc/self/stat",
		 (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: fields start
	 * after the last ')'.  utime and stime are fields 14 and 15. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
				"%llu %llu", &ut, &st) != 2)
		return -EPROTO;
	out->cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	return 0;
}

/* CPU time to the nanosecond: the first field of each thread's
 * /proc/PID/task/TID/schedstat, summed.  utime and stime count clock
 * ticks (10 ms), too coarse for a quiet relay over a 3 s window: at 10
 * sessions the relay spends a few milliseconds.  -ENOENT without
 * schedstat (then bench_proc_stat's ticks are used). */
static int bench_proc_schedstat(pid_t pid, struct bench_proc *out)
{
	char path[64], file[96];
	unsigned long long ns, sum = 0;
	struct dirent *d;
	bool any = false;
	DIR *dir;

	snprintf(path, sizeof(path), pid ? "/proc/%d/task" : "/proc/self/task",
		 (int)pid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((d = readdir(dir))) {
		FILE *f;

		if (d->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "%s/%.20s/schedstat", path,
			 d->d_name);
		f = fopen(file, "r");
		if (!f)
			continue; /* the thread just ended */
		if (fscanf(f, "%llu", &ns) == 1) {
			sum += ns;
			any = true;
		}
		fclose(f);
	}
	closedir(dir);
	if (!any)
		return -ENOENT;
	out->cpu_s = (double)sum / 1e9;
	return 0;
}

static int bench_proc_status(pid_t pid, struct bench_proc *out)
{
	char path[64], line[256];
	unsigned long long v;
	FILE *f;

	snprintf(path, sizeof(path),
		 pid ? "/proc/%d/status" : "/proc/self/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmRSS: %llu", &v) == 1)
			out->rss_kib = v;
		else if (sscanf(line, "VmHWM: %llu", &v) == 1)
			out->hwm_kib = v;
	}
	fclose(f);
	return 0;
}

int bench_proc_read(pid_t pid, struct bench_proc *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = bench_proc_stat(pid, out);
	if (!rc)
		rc = bench_proc_status(pid, out);
	if (!rc)
		bench_proc_schedstat(pid, out);
	if (rc)
		memset(out, 0, sizeof(*out));
	return rc;
}

/* Sends one request (body may be NULL) and reads the whole response into
 * buf (NUL-terminated) within the time bound. */
static int bench_http(int port, const char *method, const char *path,
		      const char *bearer, const char *body, char *buf,
		      size_t cap)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char req[2048];
	size_t len = 0;
	int fd, rc = 0, n;

	n = snprintf(req, sizeof(req),
		     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
		     "Connection: close\r\n%s%s%s"
		     "Content-Type: application/json\r\n"
		     "Content-Length: %zu\r\n\r\n%s",
		     method, path, port, bearer ? "Authorization: Bearer " : "",
		     bearer ? bearer : "", bearer ? "\r\n" : "",
		     body ? strlen(body) : 0, body ? body : "");
	if (n < 0 || (size_t)n >= sizeof(req))
		return -E2BIG;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    write(fd, req, (size_t)n) != n) {
		rc = -errno;
		goto out;
	}
	while (len < cap - 1) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&pfd, 1, BENCH_METRICS_MS) <= 0) {
			rc = -ETIMEDOUT;
			break;
		}
		r = read(fd, buf + len, cap - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
out:
	buf[len] = '\0';
	close(fd);
	return len ? 0 : (rc ? rc : -EPROTO);
}

int bench_http_status(int port, const char *method, const char *path,
		      const char *bearer, const char *body)
{
	char buf[4096];
	int status = 0;
	int rc = bench_http(port, method, path, bearer, body, buf,
			    sizeof(buf));

	if (rc)
		return rc;
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
		return -EPROTO;
	return status;
}

/* Sums every sample of the metric name (labelled samples included). */
static double bench_metric_sum(const char *text, const char *name)
{
	size_t nl = strlen(name);
	double sum = 0;

	for (const char *p = text; (p = strstr(p, name)); p += nl) {
		const char *v = p + nl;

		if ((p != text && p[-1] != '\n') || (*v != ' ' && *v != '{'))
			continue;
		if (*v == '{' && !(v = strchr(v, '}')))
			break;
		sum += strtod(v + 1, NULL);
	}
	return sum;
}

int bench_metrics_read(int port, struct bench_metrics *out)
{
	char *buf = malloc(BENCH_METRICS_MAX);
	int rc;

	memset(out, 0, sizeof(*out));
	if (!buf)
		return -ENOMEM;
	rc = bench_http(port, "GET", "/metrics", NULL, NULL, buf,
			BENCH_METRICS_MAX);
	if (!rc && !strstr(buf, "asp_forwarded_bytes_total"))
		rc = -EPROTO;
	if (!rc) {
		out->copied = bench_metric_sum(buf, "asp_copied_bytes_total");
		out->forwarded =
			bench_metric_sum(buf, "asp_forwarded_bytes_total");
		out->bytes_in = bench_metric_sum(buf, "asp_bytes_in_total");
		out->bytes_out = bench_metric_sum(buf, "asp_bytes_out_total");
		out->dropped = bench_metric_sum(buf, "asp_dropped_total");
	}
	free(buf);
	return rc;
}

int bench_raise_nofile(uint64_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	if (rl.rlim_cur >= want)
		return 0;
	if (rl.rlim_max >= want) {
		rl.rlim_cur = want;
		return setrlimit(RLIMIT_NOFILE, &rl) ? -errno : 0;
	}
	rl.rlim_cur = rl.rlim_max = want;
	if (!setrlimit(RLIMIT_NOFILE, &rl))
		return 0;
	/* Without CAP_SYS_RESOURCE the hard limit is a ceiling: take all of
	 * it and say so. */
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	return -EPERM;
}

/*
 * bench_sys: what the benchmark reads about the process under test and
 * about itself: CPU time and memory from /proc, the relay's Prometheus
 * counters over HTTP, and the file descriptor limit.
 *
 * Every reader returns 0 or a negative errno and leaves its output zeroed
 * on failure, so a missing /proc entry or a relay without /metrics shows
 * as zeros in the results, never as a crash.
 */
#ifndef ASP_BENCH_SYS_H
#define ASP_BENCH_SYS_H

#include <stdint.h>
#include <sys/types.h>

struct bench_proc {
	double cpu_s;      /* CPU time of all its threads, seconds (ns exact) */
	uint64_t rss_kib;  /* VmRSS */
	uint64_t hwm_kib;  /* VmHWM: peak RSS */
};

/* Reads /proc/PID/stat, /proc/PID/status and the threads' schedstat
 * (pid 0: this process). */
int bench_proc_read(pid_t pid, struct bench_proc *out);

/* The relay's counters that the report uses (docs/protocol.md, /metrics). */
struct bench_metrics {
	double copied, forwarded, bytes_in, bytes_out, dropped;
};

/* GET http://127.0.0.1:port/metrics with a 2 s bound, plain HTTP only,
 * and parses the counters above.  0, or -errno / -EPROTO. */
int bench_metrics_read(int port, struct bench_metrics *out);

/* One plain HTTP request to 127.0.0.1:port (bearer and body may be
 * NULL; the body is sent as JSON), bounded by 2 s per read.  The HTTP
 * status, or -errno / -EPROTO. */
int bench_http_status(int port, const char *method, const char *path,
		      const char *bearer, const char *body);

/* Raises RLIMIT_NOFILE to at least want (root with CAP_SYS_RESOURCE may
 * raise the hard limit too).  0, or -EPERM when only the hard limit could
 * be had, or -errno. */
int bench_raise_nofile(uint64_t want);

#endif

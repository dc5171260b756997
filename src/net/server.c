/*
 * server.c - the minimal HTTP/1.1 server behind `duroxlua exporter` (see http.h): one
 * listening socket, one connection at a time, every read and write bounded in size and time
 * (poll), "Connection: close" on every answer. Enough for Prometheus scrapes and a health
 * check; not a general web server.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "net/http.h"
#include "util/timeutil.h"

#define HEAD_MAX 8192

struct net_server {
	int fd;
	int port;
};

int net_server_open(const char *host, int port, net_server **out, char *err, size_t errlen)
{
	*out = NULL;
	if (port < 0 || port > 65535) {
		snprintf(err, errlen, "port %d out of range", port);
		return -1;
	}
	struct addrinfo hints = {0}, *ai = NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	char ps[8];
	snprintf(ps, sizeof ps, "%d", port);
	const char *h = host != NULL && *host ? host : "127.0.0.1";
	int gr = getaddrinfo(h, ps, &hints, &ai);
	if (gr != 0) {
		snprintf(err, errlen, "cannot resolve '%s': %s", h, gai_strerror(gr));
		return -1;
	}
	int fd = -1;
	char why[160] = "no address";
	for (struct addrinfo *p = ai; p != NULL; p = p->ai_next) {
		fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, p->ai_protocol);
		if (fd < 0) {
			snprintf(why, sizeof why, "%s", strerror(errno));
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, p->ai_addr, p->ai_addrlen) == 0 && listen(fd, 16) == 0)
			break;
		snprintf(why, sizeof why, "%s", strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on %s:%d: %s", h, port, why);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	struct sockaddr_storage sa;
	socklen_t sl = sizeof sa;
	int bound = port;
	if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		bound = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
		                                       : ((struct sockaddr_in *)&sa)->sin_port);
	net_server *s = calloc(1, sizeof *s);
	if (s == NULL) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->fd = fd;
	s->port = bound;
	*out = s;
	return 0;
}

int net_server_port(const net_server *s) { return s->port; }

void net_server_close(net_server *s)
{
	if (s == NULL)
		return;
	close(s->fd);
	free(s);
}

/* Waits until fd is ready for events or the deadline: 1 ready, 0 timeout or a signal (the
 * caller looks again: Ctrl-C must get through), -1 error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - time_mono_ms();
		if (left < 0)
			left = 0;
		struct pollfd p = {fd, events, 0};
		int r = poll(&p, 1, (int)(left > 1000000 ? 1000000 : left));
		if (r > 0)
			return 1;
		if (r == 0) {
			if (time_mono_ms() >= deadline)
				return 0;
			continue;
		}
		return errno == EINTR ? 0 : -1;
	}
}

static void write_all(int fd, const char *p, size_t n, int64_t deadline)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(fd, POLLOUT, deadline) != 1)
				return;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		return;
	}
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Status";
	}
}

void net_server_respond(net_server_request *rq, int status, const char *content_type, const char *body, size_t len,
                        int64_t write_timeout_ms)
{
	if (rq->fd < 0)
		return;
	char head[512];
	int hl = snprintf(head, sizeof head,
	                  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
	                  status, reason(status), content_type ? content_type : "text/plain; charset=utf-8", len);
	int64_t deadline = time_mono_ms() + (write_timeout_ms > 0 ? write_timeout_ms : 10000);
	write_all(rq->fd, head, (size_t)hl, deadline);
	if (strcmp(rq->method, "HEAD") != 0)
		write_all(rq->fd, body, len, deadline);
	shutdown(rq->fd, SHUT_WR);
	close(rq->fd);
	rq->fd = -1;
}

int net_server_accept(net_server *s, int64_t timeout_ms, int64_t read_timeout_ms, net_server_request *rq, char *err,
                      size_t errlen)
{
	memset(rq, 0, sizeof *rq);
	rq->fd = -1;
	int r = wait_fd(s->fd, POLLIN, time_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0));
	if (r < 0) {
		snprintf(err, errlen, "waiting for connections failed: %s", strerror(errno));
		return -1;
	}
	if (r == 0)
		return 0;
	struct sockaddr_storage sa;
	socklen_t sl = sizeof sa;
	int fd = accept(s->fd, (struct sockaddr *)&sa, &sl);
	if (fd < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED ? 0 : -1;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	if (sa.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, rq->peer, sizeof rq->peer);
	else if (sa.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, rq->peer, sizeof rq->peer);
	rq->fd = fd;
	char head[HEAD_MAX + 1];
	size_t n = 0;
	head[0] = '\0';
	int64_t deadline = time_mono_ms() + (read_timeout_ms > 0 ? read_timeout_ms : 5000);
	while (strstr(head, "\r\n\r\n") == NULL) {
		if (n == HEAD_MAX) {
			strcpy(rq->method, "GET");
			net_server_respond(rq, 400, NULL, "request head too large\n", 23, 1000);
			return 0;
		}
		ssize_t got = recv(fd, head + n, HEAD_MAX - n, 0);
		if (got > 0) {
			n += (size_t)got;
			head[n] = '\0';
			continue;
		}
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) &&
		    wait_fd(fd, POLLIN, deadline) == 1)
			continue;
		close(fd); /* too slow, gone, or closed before a whole head: no answer */
		rq->fd = -1;
		return 0;
	}
	/* request line: METHOD SP target SP HTTP/x.y */
	const char *sp1 = strchr(head, ' ');
	const char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	const char *eol = strstr(head, "\r\n");
	if (sp1 == NULL || sp2 == NULL || eol == NULL || sp2 > eol || (size_t)(sp1 - head) >= sizeof rq->method ||
	    (size_t)(sp2 - sp1 - 1) >= sizeof rq->path || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		strcpy(rq->method, "GET");
		net_server_respond(rq, 400, NULL, "malformed request\n", 18, 1000);
		return 0;
	}
	memcpy(rq->method, head, (size_t)(sp1 - head));
	rq->method[sp1 - head] = '\0';
	memcpy(rq->path, sp1 + 1, (size_t)(sp2 - sp1 - 1));
	rq->path[sp2 - sp1 - 1] = '\0';
	return 1;
}

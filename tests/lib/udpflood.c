/* Sends N small UDP datagrams to ADDR:PORT as fast as it can, for the
 * flood test (run inside a container's network namespace). Prints how
 * many it sent.
 *
 * usage: udpflood ADDR PORT N */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	unsigned long n, i, sent = 0;
	int fd;

	if (argc != 4 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1)
		return 2;
	sa.sin_port = htons((unsigned short)atoi(argv[2]));
	n = strtoul(argv[3], NULL, 10);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return 1;
	for (i = 0; i < n; i++)
		if (sendto(fd, "x", 1, 0, (struct sockaddr *)&sa, sizeof(sa)) ==
		    1)
			sent++;
	printf("%lu\n", sent);
	return 0;
}

/* Board HAL for a hosted build (the `host` board, see ereid_board.h): the HIL
 * firmware runs as an ordinary process that the host side starts on pipes.
 *
 * - "UART": file descriptors 0 and 1 as raw bytes (read/write, no stdio, so no
 *   text-mode translation and no buffering outside this file). Output is kept
 *   in a buffer and written out whenever the firmware is about to wait for
 *   input, so a reply leaves in one or a few write() calls.
 * - Counter: clock_gettime(CLOCK_MONOTONIC) in nanoseconds (EREID_UNIT_NANOSECONDS).
 * - End of input (the host closed our stdin) ends the process with status 0; a
 *   failed read or write (the host went away) with status 3. */
#define _POSIX_C_SOURCE 200112L

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "ereid_board.h"

#define HOST_IO_BUFFER_BYTES 4096u
#define HOST_EXIT_IO_ERROR 3

static uint8_t rx_buf[HOST_IO_BUFFER_BYTES];
static size_t rx_len;
static size_t rx_pos;
static uint8_t tx_buf[HOST_IO_BUFFER_BYTES];
static size_t tx_len;
static uint64_t cycles_origin;

static void tx_flush(void)
{
    size_t done = 0;
    while (done < tx_len) {
        ssize_t n = write(STDOUT_FILENO, tx_buf + done, tx_len - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            exit(HOST_EXIT_IO_ERROR);
        }
        done += (size_t)n;
    }
    tx_len = 0;
}

static void rx_fill(void)
{
    ssize_t n;
    tx_flush(); /* the host is waiting for what we wrote before it sends more */
    do {
        n = read(STDIN_FILENO, rx_buf, sizeof rx_buf);
    } while (n < 0 && errno == EINTR);
    if (n == 0) {
        exit(0);
    }
    if (n < 0) {
        exit(HOST_EXIT_IO_ERROR);
    }
    rx_len = (size_t)n;
    rx_pos = 0;
}

void ereid_uart_putc(uint8_t byte)
{
    if (tx_len == sizeof tx_buf) {
        tx_flush();
    }
    tx_buf[tx_len++] = byte;
}

uint8_t ereid_uart_getc(void)
{
    if (rx_pos == rx_len) {
        rx_fill();
    }
    return rx_buf[rx_pos++];
}

void ereid_uart_write(const void *data, uint32_t len)
{
    const uint8_t *p = (const uint8_t *)data;
    while (len--) {
        ereid_uart_putc(*p++);
    }
}

void ereid_uart_read(void *data, uint32_t len)
{
    uint8_t *p = (uint8_t *)data;
    while (len--) {
        *p++ = ereid_uart_getc();
    }
}

uint64_t ereid_cycles_now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        return 0u;
    }
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void ereid_cycles_start(void)
{
    cycles_origin = ereid_cycles_now();
}

uint64_t ereid_cycles_stop(void)
{
    return ereid_cycles_now() - cycles_origin;
}

uint32_t ereid_cycles_unit(void)
{
    return EREID_UNIT_NANOSECONDS;
}

uint32_t ereid_board_clock_hz(void)
{
    return 0u;
}

const char *ereid_board_core(void)
{
#if defined(__x86_64__)
    return "x86-64";
#elif defined(__aarch64__)
    return "aarch64";
#else
    return "host";
#endif
}

void ereid_board_init(void)
{
    /* A closed pipe makes write() fail (EPIPE) instead of killing us silently. */
    (void)signal(SIGPIPE, SIG_IGN);
    rx_len = rx_pos = tx_len = 0;
    ereid_cycles_start();
}

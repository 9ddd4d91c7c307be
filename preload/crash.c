/* SPDX-License-Identifier: MIT */
/* Fatal signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) and the ones
 * that end a program from outside by default (SIGHUP, SIGINT, SIGQUIT,
 * SIGPIPE, SIGTERM: Ctrl-C, kill, `prog | head`; SIGALRM, SIGUSR1, SIGXCPU,
 * SIGXFSZ, real-time signals and the rest): while the program leaves
 * them at their default action, the shim's handler flushes what was
 * recorded and lets the signal kill the process as it would have (same
 * signal, same core dump). A program that installs a handler of its
 * own gets it installed for real; sigaction() and signal() report to the
 * program what it would see without the shim. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"
#include "sys.h"

static const int fatal_signals[] = {
    SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTERM,
    /* The others whose default action ends the process. Not SIGSYS: under
     * a seccomp filter the flush's own system calls could be refused. */
    SIGALRM, SIGVTALRM, SIGPROF, SIGUSR1, SIGUSR2, SIGXCPU, SIGXFSZ, SIGTRAP, SIGSTKFLT,
    SIGIO, SIGPWR};

/* Signals an instruction raises (si_code > 0): returning re-executes it. */
static int is_fault(int sig)
{
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL;
}

/* Per fatal signal. `ours` is 1 while the shim's handler is the kernel's
 * disposition; `app` is then what the program believes is installed (its
 * last SIG_DFL action, or what the kernel had when the shim took over).
 * Plain ints, not atomics: sigaction() is async-signal-safe and may be
 * called from a handler, so no lock either; a program that changes one
 * signal's action from two threads at once races with itself already. */
static struct {
	int eligible;
	int ours;
	struct sigaction app;
} managed[NSIG];

static lt_sigaction_fn real_sigaction;

static void crash_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	int saved = errno;
	lt__tls.busy++; /* nothing this thread does now is recorded */
	lt__crash_flush(sig);
	/* SA_RESETHAND made the action SIG_DFL on entry. A fault caused by
	 * an instruction happens again when the handler returns and kills
	 * the process with its default action; any other signal (sent with
	 * kill or raise, SIGPIPE from a write, abort's SIGABRT) is sent
	 * again: it stays pending while this handler blocks it and is
	 * delivered on return. */
	if (si == NULL || si->si_code <= 0 || !is_fault(sig))
		syscall(SYS_tgkill, getpid(), lt__sys_gettid(), sig);
	lt__tls.busy--;
	errno = saved;
}

static int install_ours(int sig)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = crash_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_ONSTACK | SA_RESTART;
	sigfillset(&sa.sa_mask); /* nothing interrupts the flush */
	return real_sigaction(sig, &sa, NULL);
}

/* Takes over `sig` while it is at its default action. */
static void manage(int sig)
{
	struct sigaction cur;
	/* The snapshot signal has the shim's own handler. */
	if (sig == lt__config.snapshot_signal || real_sigaction(sig, NULL, &cur) != 0)
		return;
	managed[sig].eligible = 1;
	/* Only over the default action: a handler or SIG_IGN that is already
	 * in place (inherited, or set by a constructor that ran before ours)
	 * stays the program's. */
	if (cur.sa_handler == SIG_DFL && install_ours(sig) == 0) {
		managed[sig].app = cur;
		managed[sig].ours = 1;
	}
}

void lt__crash_install(lt_sigaction_fn real)
{
	real_sigaction = real;
	if (!real)
		return;
	for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0]; i++)
		manage(fatal_signals[i]);
	/* Real-time signals end the process by default too. */
	for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
		manage(sig);
}

int lt__crash_sigaction(int sig, const struct sigaction *act, struct sigaction *old,
			lt_sigaction_fn real)
{
	if (sig <= 0 || sig >= NSIG || !managed[sig].eligible || !real_sigaction)
		return real(sig, act, old);
	struct sigaction prev;
	if (managed[sig].ours)
		prev = managed[sig].app;
	else if (real_sigaction(sig, NULL, &prev) != 0)
		return -1;
	if (act) {
		if (act->sa_handler == SIG_DFL) {
			/* The default again: the shim's handler stands in for
			 * it (a vfork child shares this table: leave it be). */
			if (getpid() == lt__pid && install_ours(sig) == 0) {
				managed[sig].app = *act;
				managed[sig].ours = 1;
			} else if (real_sigaction(sig, act, NULL) != 0) {
				return -1;
			}
		} else {
			if (real_sigaction(sig, act, NULL) != 0)
				return -1;
			if (getpid() == lt__pid)
				managed[sig].ours = 0;
		}
	}
	if (old)
		*old = prev;
	return 0;
}

int lt__crash_managed(int sig)
{
	return sig > 0 && sig < NSIG && managed[sig].eligible && real_sigaction;
}

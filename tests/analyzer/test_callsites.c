/* SPDX-License-Identifier: MIT */
/* Call site classification: which visible stacks are the C++ runtime's
 * own start-up (libstdc++'s emergency exception-handling pool, allocated
 * by its constructor and kept to the end), listed apart from the leaks. */
#include <criterion/criterion.h>

#include "callsites.h"

static const lt__frame_t pool = {.module = "/lib/x86_64-linux-gnu/libstdc++.so.6"};
static const lt__frame_t stdcxx_ctor = {.function = "_GLOBAL__sub_I_eh_alloc.cc",
					.module = "/lib/x86_64-linux-gnu/libstdc++.so.6"};
static const lt__frame_t call_init = {.function = "call_init", .inlined = true,
				      .module = "/lib64/ld-linux-x86-64.so.2"};
static const lt__frame_t dl_init = {.function = "_dl_init",
				    .module = "/lib64/ld-linux-x86-64.so.2"};
static const lt__frame_t user_ctor = {.function = "init_tables", .module = "/usr/lib/libapp.so"};
static const lt__frame_t string_ctor = {.function = "std::string::_M_construct",
					.module = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30"};
static const lt__frame_t main_fn = {.function = "main", .module = "/tmp/app"};
static const lt__frame_t dlopen_fn = {.function = "___dlopen",
				      .module = "/lib/x86_64-linux-gnu/libc.so.6"};

Test(callsites, libstdcxx_startup_is_runtime)
{
	const lt__frame_t *startup[] = {&pool, &stdcxx_ctor, &call_init, &dl_init};
	cr_assert(lt__frames_runtime_init(startup, 4));
	/* libstdc++ loaded later by dlopen: its constructor runs the same way. */
	const lt__frame_t *late[] = {&pool, &call_init, &dl_init, &dlopen_fn, &main_fn};
	cr_assert(lt__frames_runtime_init(late, 5));
}

Test(callsites, program_allocations_are_not_runtime)
{
	/* Another library's constructor. */
	const lt__frame_t *ctor[] = {&user_ctor, &call_init, &dl_init};
	cr_assert_not(lt__frames_runtime_init(ctor, 3));
	/* libstdc++ called by the program. */
	const lt__frame_t *str[] = {&string_ctor, &main_fn};
	cr_assert_not(lt__frames_runtime_init(str, 2));
	/* libstdc++ called by a library constructor. */
	const lt__frame_t *via[] = {&string_ctor, &user_ctor, &call_init, &dl_init};
	cr_assert_not(lt__frames_runtime_init(via, 4));
	/* Nothing but libstdc++ (the rest not recorded): not known. */
	const lt__frame_t *alone[] = {&pool};
	cr_assert_not(lt__frames_runtime_init(alone, 1));
	cr_assert_not(lt__frames_runtime_init(NULL, 0));
}

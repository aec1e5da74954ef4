/*
 * fibers.cpp — the block scheduler of the CUDA emulation (emu.h): the CUDA threads of a block run as
 * cooperative fibers on the launching host thread, one fiber per CUDA thread, each on its own stack
 * (kStack bytes above a PROT_NONE guard page, mapped once and reused by every later launch from that host
 * thread). A fiber runs until it waits at a barrier (__syncthreads: the block's; __shfl_down_sync: its
 * warp's, twice) or finishes; the scheduler resumes, in thread order, every fiber whose barrier has opened,
 * and aborts with a message naming the kernel when none can go on before all have finished (a barrier that
 * not every thread of the block, or warp, reaches: a deadlock or undefined behaviour on the GPU).
 *
 * Context switches: a few instructions of assembly on x86-64 (callee-saved registers, MXCSR and the x87
 * control word; no signal-mask system call), POSIX ucontext elsewhere or with -DGMM_EMU_UCONTEXT (slower:
 * each swapcontext makes a sigprocmask system call). Built with AddressSanitizer, every
 * switch is announced to it (__sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber).
 */
#include "emu.h"

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cxxabi.h>
#include <cstring>
#include <string>
#include <sys/mman.h>
#include <unordered_map>
#include <unistd.h>

#if !defined(__x86_64__) && !defined(GMM_EMU_UCONTEXT)
#define GMM_EMU_UCONTEXT 1
#endif
#ifdef GMM_EMU_UCONTEXT
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define GMM_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GMM_EMU_ASAN 1
#endif
#endif
#ifdef GMM_EMU_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#ifndef GMM_EMU_UCONTEXT
/* gmm_emu_swap(save, to): pushes the callee-saved state on the current stack, stores the stack pointer in
 * *save, switches to the stack `to` (saved the same way, or made by new_fiber) and pops its state. */
extern "C" void gmm_emu_swap(void **save, void *to);
asm(R"(
    .text
    .p2align 4
    .globl gmm_emu_swap
    .hidden gmm_emu_swap
    .type gmm_emu_swap, @function
gmm_emu_swap:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size gmm_emu_swap, .-gmm_emu_swap
)");
#endif

__thread gmm_emu_thread_ctx gmm_emu_ctx;
__thread gmm_emu_dim threadIdx, blockIdx, blockDim, gridDim;

namespace {

constexpr size_t kStack = 256 << 10; /* per fiber; the kernels need a few KiB (more with sanitizers) */
constexpr int kMaxBlock = 1024;

struct Barrier {
    int expected = 0, arrived = 0;
    unsigned long long gen = 0; /* incremented each time the barrier opens */
};

enum State { kDone, kRunnable, kWaiting };

struct Fiber {
    int tid = 0;
    State state = kDone;
    Barrier *wait_on = nullptr;
    unsigned long long wait_gen = 0;
    unsigned char *map = nullptr; /* guard page + stack */
    unsigned char *stack = nullptr;
#ifdef GMM_EMU_UCONTEXT
    ucontext_t uc;
#else
    void *sp = nullptr;
#endif
#ifdef GMM_EMU_ASAN
    void *fake_stack = nullptr;
#endif
};

struct Scheduler {
    Fiber *fibers[kMaxBlock] = {};
    int n_fibers = 0;
    Fiber *cur = nullptr; /* the running fiber; nullptr on the launching thread's own stack */
#ifdef GMM_EMU_UCONTEXT
    ucontext_t main_uc;
#else
    void *main_sp = nullptr;
#endif
#ifdef GMM_EMU_ASAN
    void *main_fake_stack = nullptr;
    const void *main_bottom = nullptr;
    size_t main_size = 0;
#endif
    /* the block being run */
    void (*body)(void *) = nullptr;
    void *arg = nullptr;
    Barrier block_bar;
    Barrier warp_bar[kMaxBlock / 32];
    double warp_vals[kMaxBlock / 32][32];

    ~Scheduler()
    {
        for (int i = 0; i < n_fibers; i++) {
            munmap(fibers[i]->map, kStack + page());
            delete fibers[i];
        }
    }
    static size_t page() { return (size_t)sysconf(_SC_PAGESIZE); }
};

thread_local Scheduler sched;

[[noreturn]] __attribute__((format(printf, 1, 2))) void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "gmm emu: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

/* The launching thread's stack -> fiber f, until f waits or finishes. */
void resume(Scheduler &s, Fiber *f)
{
    s.cur = f;
#ifdef GMM_EMU_ASAN
    __sanitizer_start_switch_fiber(&s.main_fake_stack, f->stack, kStack);
#endif
#ifdef GMM_EMU_UCONTEXT
    if (swapcontext(&s.main_uc, &f->uc) != 0) die("swapcontext failed");
#else
    gmm_emu_swap(&s.main_sp, f->sp);
#endif
#ifdef GMM_EMU_ASAN
    __sanitizer_finish_switch_fiber(s.main_fake_stack, nullptr, nullptr);
#endif
    s.cur = nullptr;
}

/* The running fiber -> the launching thread's stack; returns when the scheduler resumes the fiber. */
void yield(Scheduler &s, Fiber *f)
{
#ifdef GMM_EMU_ASAN
    __sanitizer_start_switch_fiber(&f->fake_stack, s.main_bottom, s.main_size);
#endif
#ifdef GMM_EMU_UCONTEXT
    if (swapcontext(&f->uc, &s.main_uc) != 0) die("swapcontext failed");
#else
    gmm_emu_swap(&f->sp, s.main_sp);
#endif
#ifdef GMM_EMU_ASAN
    __sanitizer_finish_switch_fiber(f->fake_stack, &s.main_bottom, &s.main_size);
#endif
}

/* A fiber's life: run the current block's body as CUDA thread f->tid, finish, wait to be resumed for the
 * next block (of this or a later launch). */
void fiber_entry()
{
    Scheduler &s = sched;
#ifdef GMM_EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &s.main_bottom, &s.main_size);
#endif
    for (;;) {
        Fiber *f = s.cur;
        s.body(s.arg);
        f->state = kDone;
        yield(s, f);
    }
}

Fiber *new_fiber(int tid)
{
    const size_t pg = Scheduler::page();
    void *m = mmap(nullptr, kStack + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) die("cannot map a fiber stack (mmap failed)");
    Fiber *f = new Fiber;
    f->tid = tid;
    f->map = static_cast<unsigned char *>(m);
    if (mprotect(f->map, pg, PROT_NONE) != 0) die("cannot protect a fiber's guard page (mprotect failed)");
    f->stack = f->map + pg;
#ifdef GMM_EMU_UCONTEXT
    if (getcontext(&f->uc) != 0) die("getcontext failed");
    f->uc.uc_stack.ss_sp = f->stack;
    f->uc.uc_stack.ss_size = kStack;
    f->uc.uc_link = nullptr;
    makecontext(&f->uc, fiber_entry, 0);
#else
    /* the frame gmm_emu_swap pops: MXCSR + x87 control word, r15, r14, r13, r12, rbx, rbp (0: the end of the
     * frame chain), then the address it returns to; fiber_entry starts with rsp = 8 mod 16 */
    uint64_t *top = reinterpret_cast<uint64_t *>(f->stack + kStack);
    uint64_t *sp = top - 9;
    uint32_t csr;
    uint16_t cw;
    asm volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(csr), "=m"(cw));
    sp[0] = (uint64_t)csr | (uint64_t)cw << 32;
    for (int i = 1; i <= 6; i++) sp[i] = 0;
    sp[7] = reinterpret_cast<uint64_t>(&fiber_entry);
    sp[8] = 0;
    f->sp = sp;
#endif
    return f;
}

std::string kernel_name(const gmm_emu_launch_info &k)
{
    int st = 0;
    char *type = abi::__cxa_demangle(k.type, nullptr, nullptr, &st);
    std::string r = std::string(k.expr) + " (" + k.file + ":" + std::to_string(k.line) + ", " +
                    (st == 0 && type ? type : k.type) + ")";
    std::free(type);
    return r;
}

[[noreturn]] void deadlock(const Scheduler &s, const gmm_emu_launch_info &k, int block, int n)
{
    int done = 0, at_block = 0, at_warp = 0, first_block = -1, first_warp = -1, first_done = -1;
    for (int t = 0; t < n; t++) {
        const Fiber *f = s.fibers[t];
        if (f->state == kDone) {
            done++;
            if (first_done < 0) first_done = t;
        } else if (f->wait_on == &s.block_bar) {
            at_block++;
            if (first_block < 0) first_block = t;
        } else {
            at_warp++;
            if (first_warp < 0) first_warp = t;
        }
    }
    char what[400];
    int len = snprintf(what, sizeof what, "block %d of %d (%d threads):", block, k.grid, n);
    const struct {
        int count, first;
        const char *where;
    } parts[3] = {{at_block, first_block, "wait at __syncthreads"},
                  {at_warp, first_warp, "wait at a warp shuffle"},
                  {done, first_done, "have returned"}};
    for (const auto &p : parts)
        if (p.count > 0 && len < (int)sizeof what)
            len += snprintf(what + len, sizeof what - len, " %d %s (the first: thread %d);", p.count, p.where,
                            p.first);
    die("DEADLOCK in kernel %s, %s a __syncthreads or __shfl_down_sync that not every thread of the block "
        "(or warp) reaches; on a GPU this hangs or is undefined",
        kernel_name(k).c_str(), what);
}

/* The running fiber arrives at b and, unless it is the last to arrive (which opens b), waits until b opens. */
void arrive(Scheduler &s, Barrier &b, const char *what)
{
    Fiber *f = s.cur;
    if (!f) die("%s called outside a kernel", what);
    if (++b.arrived == b.expected) {
        b.arrived = 0;
        b.gen++;
        return;
    }
    f->state = kWaiting;
    f->wait_on = &b;
    f->wait_gen = b.gen;
    yield(s, f);
}

} // namespace

extern "C" void gmm_emu_syncthreads(void) { arrive(sched, sched.block_bar, "__syncthreads"); }

extern "C" double gmm_emu_shfl_down(double v, int off)
{
    Scheduler &s = sched;
    if (!s.cur) die("%s called outside a kernel", "__shfl_down_sync");
    const unsigned t = (unsigned)s.cur->tid, lane = t % 32, w = t / 32;
    double *vals = s.warp_vals[w];
    vals[lane] = v;
    arrive(s, s.warp_bar[w], "__shfl_down_sync");
    const double r = lane + (unsigned)off < 32 ? vals[lane + off] : v;
    arrive(s, s.warp_bar[w], "__shfl_down_sync");
    return r;
}

void gmm_emu_run_block(const gmm_emu_launch_info &k, int block, void (*body)(void *), void *arg)
{
    Scheduler &s = sched;
    const int n = k.block;
    if (s.cur) die("kernel %s launched from inside a kernel", kernel_name(k).c_str());
    while (s.n_fibers < n) {
        s.fibers[s.n_fibers] = new_fiber(s.n_fibers);
        s.n_fibers++;
    }
    s.body = body;
    s.arg = arg;
    s.block_bar = Barrier{n, 0, 0};
    for (int w = 0; w < n / 32; w++) s.warp_bar[w] = Barrier{32, 0, 0};
    for (int t = 0; t < n; t++) s.fibers[t]->state = kRunnable;
    for (int live = n; live > 0;) {
        bool ran = false;
        live = 0;
        for (int t = 0; t < n; t++) {
            Fiber *f = s.fibers[t];
            if (f->state == kDone) continue;
            if (f->state == kWaiting) {
                if (f->wait_on->gen == f->wait_gen) {
                    live++;
                    continue;
                }
                f->state = kRunnable;
            }
            threadIdx = gmm_emu_dim{(unsigned)t, 0, 0};
            resume(s, f);
            ran = true;
            if (f->state != kDone) live++;
        }
        if (live > 0 && !ran) deadlock(s, k, block, n);
    }
}

/* ---------------------------------------------------------------------------- static shared memory */

/* The block count of this host thread, and for each static shared array the block that last filled it. */
static thread_local unsigned long long block_gen = 0;
static thread_local std::unordered_map<void *, unsigned long long> *filled_in = nullptr;

void gmm_emu_new_block(void) { block_gen++; }

void gmm_emu_shared_touch(void *p, size_t len)
{
    if (!filled_in) filled_in = new std::unordered_map<void *, unsigned long long>;
    unsigned long long &g = (*filled_in)[p];
    if (g != block_gen) {
        memset(p, 0xff, len);
        g = block_gen;
    }
}

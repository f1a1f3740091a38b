/*
 * Node-API addon: single-precision matrix products through the system's CBLAS (OpenBLAS on
 * Debian), and fused row kernels of the policy's ops (AVX2 + FMA, two threads), operating in
 * place on the wasm backend's heap.
 *
 * The library is opened with dlopen at load time rather than linked, so building needs only
 * a C compiler and Node's headers; a machine without a CBLAS makes `load` fail and the engine
 * keeps its pure-tfjs kernels.
 *
 * gemmBatched(heap, batch, m, n, k, transA, transB, aOff, aStride, bOff, bStride, cOff,
 *             biasOff) computes, for i < batch, C_i = op(A_i)·op(B_i) (+ bias row) where all
 * offsets and strides count float32 elements from the start of `heap` (an ArrayBuffer), op
 * transposes when the flag is set, A_i is [m, k] after op, B_i is [k, n] after op, C_i is
 * [m, n] row-major, and biasOff < 0 means no bias. A stride of 0 broadcasts one matrix over
 * the batch.
 */
#include <dlfcn.h>
#include <math.h>
#include <node_api.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { RowMajor = 101, NoTrans = 111, Trans = 112 };
typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a,
                         int lda, const float *b, int ldb, float beta, float *c, int ldc);
typedef void (*set_threads_fn)(int);
typedef int (*get_threads_fn)(void);

/*
 * Calls below this many multiply-adds (all products of a batch together) run on one BLAS
 * thread: waking a second thread costs more than it saves on them (sampling's [32, 128]·[128,
 * 128] steps), above all on a busy machine.
 */
#define SMALL_PRODUCT (1 << 22)

static sgemm_fn sgemm = NULL;
static int max_threads = 0;
static int current_threads = 0;
static set_threads_fn set_threads = NULL;
static get_threads_fn get_threads = NULL;
static char library[256] = "";

static const char *candidates[] = {"libopenblas.so.0", "libopenblas.so", "libcblas.so.3", "libblas.so.3"};


/*
 * Products of a few rows (sampling: one row per sequence) skip sgemm. OpenBLAS packs the whole
 * right operand on every call and then runs one thread at 5-10 GB/s, while such a product only
 * needs to stream the weight once: these kernels keep the rows' accumulators in registers,
 * read each weight value once and split the columns over two threads.
 */
#define FEW_ROWS 16
/* Weights of at least this many values are split over the two threads. */
#define SPLIT_VALUES (1 << 18)

typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4)));

/*
 * Compiled for AVX2 + FMA and used only where the CPU has them (checked at run time); elsewhere
 * sgemm runs these products too (the same code for plain SSE2 is slower than OpenBLAS).
 */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FEW_ROWS_KERNELS 1
#define CLONES __attribute__((target("avx2,fma")))
#else
#define FEW_ROWS_KERNELS 0
#define CLONES
#endif

typedef struct {
  const float *x, *w, *bias;
  float *c;
  int m, n, k, tb;
} few_rows_job;

/*
 * C[r0..r0+4, j0:j1] of x·W, W [k, n] row-major, 16 columns at a time with the 4×16
 * accumulators in registers. Rows past m repeat row r0 (computed, not stored).
 */
CLONES void grpo_few_rows_nn(const few_rows_job *J, int r0, int j0, int j1) {
  const int n = J->n, k = J->k, rows = J->m - r0 < 4 ? J->m - r0 : 4;
  const float *x0 = J->x + (size_t)r0 * k;
  const float *x1 = rows > 1 ? x0 + k : x0, *x2 = rows > 2 ? x0 + 2 * (size_t)k : x0;
  const float *x3 = rows > 3 ? x0 + 3 * (size_t)k : x0;
  float *c = J->c + (size_t)r0 * n;
  int j = j0;
  for (; j + 16 <= j1; j += 16) {
    v8 b0 = {0}, b1 = {0};
    if (J->bias) {
      b0 = *(const v8u *)(J->bias + j);
      b1 = *(const v8u *)(J->bias + j + 8);
    }
    v8 p0 = b0, q0 = b1, p1 = b0, q1 = b1, p2 = b0, q2 = b1, p3 = b0, q3 = b1;
    const float *w = J->w + j;
    for (int i = 0; i < k; i++, w += n) {
      __builtin_prefetch(w + 16 * (size_t)n);
      const v8 w0 = *(const v8u *)w, w1 = *(const v8u *)(w + 8);
      const float e0 = x0[i], e1 = x1[i], e2 = x2[i], e3 = x3[i];
      p0 += e0 * w0;
      q0 += e0 * w1;
      p1 += e1 * w0;
      q1 += e1 * w1;
      p2 += e2 * w0;
      q2 += e2 * w1;
      p3 += e3 * w0;
      q3 += e3 * w1;
    }
    const v8 ps[4] = {p0, p1, p2, p3}, qs[4] = {q0, q1, q2, q3};
    for (int r = 0; r < rows; r++) {
      *(v8u *)(c + (size_t)r * n + j) = ps[r];
      *(v8u *)(c + (size_t)r * n + j + 8) = qs[r];
    }
  }
  for (; j < j1; j++) {
    for (int r = 0; r < rows; r++) {
      const float *xr = x0 + (size_t)r * k;
      float acc = J->bias ? J->bias[j] : 0.0f;
      for (int i = 0; i < k; i++) acc += xr[i] * J->w[(size_t)i * n + j];
      c[(size_t)r * n + j] = acc;
    }
  }
}

CLONES static inline __attribute__((always_inline)) float hsum(const v8 *v) {
  return (((*v)[0] + (*v)[4]) + ((*v)[1] + (*v)[5])) + (((*v)[2] + (*v)[6]) + ((*v)[3] + (*v)[7]));
}

/* C[r0..r0+8, j0:j1] of x·Wᵀ, W [n, k] row-major: each weight row streamed once for 8 rows. */
CLONES void grpo_few_rows_nt(const few_rows_job *J, int r0, int j0, int j1) {
  const int n = J->n, k = J->k, rows = J->m - r0 < 8 ? J->m - r0 : 8;
  const float *xs[8];
  for (int r = 0; r < 8; r++) xs[r] = J->x + (size_t)(r0 + (r < rows ? r : 0)) * k;
  const float *x0 = xs[0], *x1 = xs[1], *x2 = xs[2], *x3 = xs[3], *x4 = xs[4], *x5 = xs[5], *x6 = xs[6],
              *x7 = xs[7];
  float *c = J->c + (size_t)r0 * n;
  const int k8 = k & ~7;
  for (int j = j0; j < j1; j++) {
    const float *w = J->w + (size_t)j * k;
    v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
    for (int i = 0; i < k8; i += 8) {
      const v8 wv = *(const v8u *)(w + i);
      a0 += *(const v8u *)(x0 + i) * wv;
      a1 += *(const v8u *)(x1 + i) * wv;
      a2 += *(const v8u *)(x2 + i) * wv;
      a3 += *(const v8u *)(x3 + i) * wv;
      a4 += *(const v8u *)(x4 + i) * wv;
      a5 += *(const v8u *)(x5 + i) * wv;
      a6 += *(const v8u *)(x6 + i) * wv;
      a7 += *(const v8u *)(x7 + i) * wv;
    }
    const v8 as[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
    const float b = J->bias ? J->bias[j] : 0.0f;
    for (int r = 0; r < rows; r++) {
      float s = b + hsum(&as[r]);
      for (int i = k8; i < k; i++) s += xs[r][i] * w[i];
      c[(size_t)r * n + j] = s;
    }
  }
}

CLONES static void few_rows_range(const few_rows_job *J, int j0, int j1) {
  if (J->tb)
    for (int r0 = 0; r0 < J->m; r0 += 8) grpo_few_rows_nt(J, r0, j0, j1);
  else
    for (int r0 = 0; r0 < J->m; r0 += 4) grpo_few_rows_nn(J, r0, j0, j1);
}

/* One helper thread, woken per call: part 1 of a split job runs there while part 0 runs here. */
typedef void (*part_fn)(void *ctx, int part);
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_go = PTHREAD_COND_INITIALIZER, pool_done = PTHREAD_COND_INITIALIZER;
static part_fn pool_fn = NULL;
static void *pool_ctx = NULL;
static unsigned long pool_posted = 0, pool_finished = 0;
static int pool_state = 0; /* 0 not started, 1 running, -1 could not start */

static void *pool_main(void *unused) {
  (void)unused;
  unsigned long seen = 0;
  for (;;) {
    pthread_mutex_lock(&pool_mu);
    while (pool_posted == seen) pthread_cond_wait(&pool_go, &pool_mu);
    seen = pool_posted;
    part_fn fn = pool_fn;
    void *ctx = pool_ctx;
    pthread_mutex_unlock(&pool_mu);
    fn(ctx, 1);
    pthread_mutex_lock(&pool_mu);
    pool_finished = seen;
    pthread_cond_signal(&pool_done);
    pthread_mutex_unlock(&pool_mu);
  }
  return NULL;
}

/* Runs fn(ctx, 0) and fn(ctx, 1), on two threads when a helper can run. */
static void run_two(part_fn fn, void *ctx) {
  if (pool_state == 0) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pool_state = pthread_create(&t, &attr, pool_main, NULL) == 0 ? 1 : -1;
    pthread_attr_destroy(&attr);
  }
  if (pool_state < 0) {
    fn(ctx, 0);
    fn(ctx, 1);
    return;
  }
  pthread_mutex_lock(&pool_mu);
  pool_fn = fn;
  pool_ctx = ctx;
  const unsigned long id = ++pool_posted;
  pthread_cond_signal(&pool_go);
  pthread_mutex_unlock(&pool_mu);
  fn(ctx, 0);
  pthread_mutex_lock(&pool_mu);
  while (pool_finished != id) pthread_cond_wait(&pool_done, &pool_mu);
  pthread_mutex_unlock(&pool_mu);
}

static void few_rows_part(void *ctx, int part) {
  const few_rows_job *J = ctx;
  const int mid = (J->n / 2 + 15) & ~15;
  const int j0 = part == 0 ? 0 : mid, j1 = part == 0 ? mid : J->n;
  if (j0 >= j1) return;
  few_rows_range(J, j0, j1);
}

static int few_rows_available(void) {
#if FEW_ROWS_KERNELS
  static int known = -1;
  if (known < 0) known = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return known;
#else
  return 0;
#endif
}

static void few_rows(few_rows_job *J) {
  if ((int64_t)J->n * J->k >= SPLIT_VALUES && max_threads != 1) run_two(few_rows_part, J);
  else few_rows_range(J, 0, J->n);
}


/*
 * The output head's per-row statistics for a block of logits z [c, V] (one row per token) and
 * int32 targets [c]: lp = log p(target), ent = −Σ p log p, and the rows of the gradient
 * directions a = onehot(target) − p and, when wanted, b = −p·(log p + ent) (see headLogprobs in
 * src/model/ops.ts). On the wasm backend the same takes a dozen kernels and two passes of its
 * scalar exp over every logit; here it is one pass with a vectorised exp, two threads.
 */
typedef int v8i __attribute__((vector_size(32)));

/* e^x for x ≤ 0 (Cephes' expf polynomial; relative error ~1e-7), 0 below −87 as expf underflows. */
CLONES static inline __attribute__((always_inline)) v8 exp8(v8 x) {
  const v8 lo = x - x - 87.0f;
  const v8i below = x < lo;
  x = (v8)(((v8i)x & ~below) | ((v8i)lo & below));
  const v8 n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const v8 r = x - n * 0.693359375f + n * 2.12194440e-4f;
  v8 y = r * 1.9875691500e-4f + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  const v8i bits = (__builtin_convertvector(n, v8i) + 127) << 23;
  v8 scale;
  memcpy(&scale, &bits, sizeof scale);
  return (v8)((v8i)(y * scale) & ~below);
}

typedef struct {
  const float *z;
  const int32_t *targets;
  float *a, *b, *lp, *ent;
  int rows, V;
} head_job;

CLONES static void head_rows_vec(const head_job *J, int r0, int r1) {
  const int V = J->V, V8 = V & ~7;
  for (int r = r0; r < r1; r++) {
    const float *z = J->z + (size_t)r * V;
    float *a = J->a + (size_t)r * V;
    float m = -INFINITY;
    int j = 0;
    if (V8 > 0) {
      v8 mv = *(const v8u *)z;
      for (j = 8; j < V8; j += 8) {
        const v8 zj = *(const v8u *)(z + j);
        const v8i more = zj > mv;
        mv = (v8)(((v8i)mv & ~more) | ((v8i)zj & more));
      }
      for (int l = 0; l < 8; l++) m = mv[l] > m ? mv[l] : m;
    }
    for (j = V8; j < V; j++) m = z[j] > m ? z[j] : m;
    v8 sv = {0}, pzv = {0};
    for (j = 0; j < V8; j += 8) {
      const v8 zj = *(const v8u *)(z + j);
      const v8 e = exp8(zj - m);
      *(v8u *)(a + j) = e;
      sv += e;
      pzv += e * zj;
    }
    double s = hsum(&sv), pz = hsum(&pzv);
    for (; j < V; j++) {
      const float e = expf(z[j] - m);
      a[j] = e;
      s += e;
      pz += (double)e * z[j];
    }
    const float lse = m + (float)log(s), ent = lse - (float)(pz / s), inv = (float)(1.0 / s);
    const int t = J->targets[r];
    J->lp[r] = t >= 0 && t < V ? z[t] - lse : NAN;
    J->ent[r] = ent;
    const float shift = ent - lse;
    if (J->b) {
      float *b = J->b + (size_t)r * V;
      for (j = 0; j < V8; j += 8) {
        const v8 p = *(const v8u *)(a + j) * inv;
        *(v8u *)(b + j) = -p * (*(const v8u *)(z + j) + shift);
      }
      for (; j < V; j++) b[j] = -(a[j] * inv) * (z[j] + shift);
    }
    for (j = 0; j < V8; j += 8) *(v8u *)(a + j) = -(*(const v8u *)(a + j) * inv);
    for (; j < V; j++) a[j] = -(a[j] * inv);
    if (t >= 0 && t < V) a[t] += 1.0f;
  }
}

static void head_rows_part(void *ctx, int part) {
  const head_job *J = ctx;
  const int mid = J->rows / 2;
  head_rows_vec(J, part == 0 ? 0 : mid, part == 0 ? mid : J->rows);
}


/*
 * Attention probabilities: softmax over the last axis of scores [rows = B·H·Tq, Tk] plus an
 * additive mask row (b, i) at mask + b·maskBatch + i·Tk, and its gradient
 * dx = p·(dy − Σ p·dy) — one pass each instead of tfjs's add, max, sub, exp, sum and div.
 */
typedef struct {
  const float *x, *mask, *dy;
  float *out;
  int rows, tk, tq, h;
  int64_t mask_batch;
} softmax_job;

CLONES static void softmax_rows(const softmax_job *J, int r0, int r1) {
  const int tk = J->tk, t8 = tk & ~7;
  for (int r = r0; r < r1; r++) {
    const float *x = J->x + (size_t)r * tk;
    const float *mk = J->mask + (r / (J->h * J->tq)) * J->mask_batch + (size_t)(r % J->tq) * tk;
    float *p = J->out + (size_t)r * tk;
    float m = -INFINITY;
    for (int j = 0; j < tk; j++) {
      p[j] = x[j] + mk[j];
      m = p[j] > m ? p[j] : m;
    }
    v8 sv = {0};
    int j = 0;
    for (; j < t8; j += 8) {
      const v8 e = exp8(*(const v8u *)(p + j) - m);
      *(v8u *)(p + j) = e;
      sv += e;
    }
    float sum = hsum(&sv);
    for (; j < tk; j++) {
      p[j] = expf(p[j] - m);
      sum += p[j];
    }
    const float inv = 1.0f / sum;
    for (j = 0; j < t8; j += 8) *(v8u *)(p + j) = *(const v8u *)(p + j) * inv;
    for (; j < tk; j++) p[j] *= inv;
  }
}

CLONES static void softmax_grad_rows(const softmax_job *J, int r0, int r1) {
  const int tk = J->tk, t8 = tk & ~7;
  for (int r = r0; r < r1; r++) {
    const float *p = J->x + (size_t)r * tk, *dy = J->dy + (size_t)r * tk;
    float *dx = J->out + (size_t)r * tk;
    v8 dv = {0};
    int j = 0;
    for (; j < t8; j += 8) dv += *(const v8u *)(p + j) * *(const v8u *)(dy + j);
    float dot = hsum(&dv);
    for (; j < tk; j++) dot += p[j] * dy[j];
    for (j = 0; j < t8; j += 8) *(v8u *)(dx + j) = *(const v8u *)(p + j) * (*(const v8u *)(dy + j) - dot);
    for (; j < tk; j++) dx[j] = p[j] * (dy[j] - dot);
  }
}

static void softmax_part(void *ctx, int part) {
  const softmax_job *J = ctx;
  const int mid = J->rows / 2, r0 = part == 0 ? 0 : mid, r1 = part == 0 ? mid : J->rows;
  if (J->dy) softmax_grad_rows(J, r0, r1);
  else softmax_rows(J, r0, r1);
}


/*
 * SwiGLU y = silu(a)·b elementwise and its gradient da = dy·b·σ(a)·(1 + a(1 − σ(a))),
 * db = dy·silu(a): one pass each instead of tfjs's sigmoid (a scalar exp) and five products.
 */
typedef struct {
  const float *a, *b, *dy;
  float *y, *da, *db;
  int64_t n;
} swiglu_job;

/* σ(a) from e^(−|a|), which never overflows. */
CLONES static inline __attribute__((always_inline)) v8 sigmoid8(v8 a) {
  const v8i neg = a < (a - a);
  const v8 absa = (v8)((v8i)a & ~neg) + (v8)((v8i)(-a) & neg);
  const v8 t = exp8(-absa);
  const v8 inv = 1.0f / (1.0f + t);
  return (v8)(((v8i)inv & ~neg) | ((v8i)(t * inv) & neg));
}

static inline float sigmoid1(float a) {
  return a >= 0 ? 1.0f / (1.0f + expf(-a)) : expf(a) / (1.0f + expf(a));
}

CLONES static void swiglu_range(const swiglu_job *J, int64_t i0, int64_t i1) {
  int64_t i = i0;
  for (; i + 8 <= i1; i += 8) {
    const v8 a = *(const v8u *)(J->a + i), b = *(const v8u *)(J->b + i);
    const v8 sg = sigmoid8(a);
    if (!J->dy) {
      *(v8u *)(J->y + i) = a * sg * b;
      continue;
    }
    const v8 dy = *(const v8u *)(J->dy + i);
    *(v8u *)(J->da + i) = dy * b * sg * (1.0f + a * (1.0f - sg));
    *(v8u *)(J->db + i) = dy * a * sg;
  }
  for (; i < i1; i++) {
    const float a = J->a[i], b = J->b[i], sg = sigmoid1(a);
    if (!J->dy) {
      J->y[i] = a * sg * b;
      continue;
    }
    J->da[i] = J->dy[i] * b * sg * (1.0f + a * (1.0f - sg));
    J->db[i] = J->dy[i] * a * sg;
  }
}

static void swiglu_part(void *ctx, int part) {
  const swiglu_job *J = ctx;
  const int64_t mid = (J->n / 2) & ~(int64_t)7;
  swiglu_range(J, part == 0 ? 0 : mid, part == 0 ? mid : J->n);
}


/*
 * RMSNorm over rows of x [rows, d]: r = 1/√(mean(x²) + eps), y = x·r·g; and its gradient
 * dx = r·(dx̂ − x̂·mean(dx̂·x̂)), dx̂ = dy·g, x̂ = x·r — one pass each instead of five or six
 * tfjs kernels.
 */
typedef struct {
  const float *x, *g, *dy;
  float *y, *r, *dx;
  int rows, d;
  float eps;
} rmsnorm_job;

CLONES static void rmsnorm_rows(const rmsnorm_job *J, int r0, int r1) {
  const int d = J->d, d8 = d & ~7;
  for (int row = r0; row < r1; row++) {
    const float *x = J->x + (size_t)row * d;
    int j = 0;
    if (!J->dy) {
      v8 sv = {0};
      for (; j < d8; j += 8) {
        const v8 xv = *(const v8u *)(x + j);
        sv += xv * xv;
      }
      float ss = hsum(&sv);
      for (; j < d; j++) ss += x[j] * x[j];
      const float r = 1.0f / sqrtf(ss / (float)d + J->eps);
      if (J->r) J->r[row] = r;
      float *y = J->y + (size_t)row * d;
      for (j = 0; j < d8; j += 8) *(v8u *)(y + j) = *(const v8u *)(x + j) * r * *(const v8u *)(J->g + j);
      for (; j < d; j++) y[j] = x[j] * r * J->g[j];
      continue;
    }
    const float r = J->r[row];
    const float *dy = J->dy + (size_t)row * d;
    float *dx = J->dx + (size_t)row * d;
    v8 dv = {0};
    for (; j < d8; j += 8) dv += *(const v8u *)(dy + j) * *(const v8u *)(J->g + j) * *(const v8u *)(x + j);
    float dot = hsum(&dv);
    for (; j < d; j++) dot += dy[j] * J->g[j] * x[j];
    const float c = dot * r * r / (float)d;
    for (j = 0; j < d8; j += 8)
      *(v8u *)(dx + j) = r * (*(const v8u *)(dy + j) * *(const v8u *)(J->g + j) - *(const v8u *)(x + j) * c);
    for (; j < d; j++) dx[j] = r * (dy[j] * J->g[j] - x[j] * c);
  }
}

static void rmsnorm_part(void *ctx, int part) {
  const rmsnorm_job *J = ctx;
  const int mid = J->rows / 2;
  rmsnorm_rows(J, part == 0 ? 0 : mid, part == 0 ? mid : J->rows);
}


/*
 * LayerNorm over rows, y = (x − mean)·r·g + b with r = 1/√(var + eps), and the tanh-approximate
 * GELU written as x·σ(x(a + b·x²)) (see gelu in src/model/ops.ts), forward and gradient — one
 * kernel each instead of six to twelve.
 */
typedef struct {
  const float *x, *g, *b;
  float *y;
  int rows, d;
  float eps, ga, gb;
  int64_t n;
  /* LayerNorm: per-row mean and r out of the forward pass; gradients: dy in, dx (and dy·x̂) out. */
  float *mean, *rstd;
  const float *dy;
  float *dx, *dyxhat;
} pointwise_job;

CLONES static void layernorm_rows(const pointwise_job *J, int r0, int r1) {
  const int d = J->d, d8 = d & ~7;
  for (int row = r0; row < r1; row++) {
    const float *x = J->x + (size_t)row * d;
    float *y = J->y + (size_t)row * d;
    v8 sv = {0};
    int j = 0;
    for (; j < d8; j += 8) sv += *(const v8u *)(x + j);
    float sum = hsum(&sv);
    for (; j < d; j++) sum += x[j];
    const float mean = sum / (float)d;
    v8 qv = {0};
    for (j = 0; j < d8; j += 8) {
      const v8 c = *(const v8u *)(x + j) - mean;
      qv += c * c;
    }
    float sq = hsum(&qv);
    for (; j < d; j++) sq += (x[j] - mean) * (x[j] - mean);
    const float r = 1.0f / sqrtf(sq / (float)d + J->eps);
    if (J->mean) J->mean[row] = mean, J->rstd[row] = r;
    for (j = 0; j < d8; j += 8)
      *(v8u *)(y + j) = (*(const v8u *)(x + j) - mean) * r * *(const v8u *)(J->g + j) + *(const v8u *)(J->b + j);
    for (; j < d; j++) y[j] = (x[j] - mean) * r * J->g[j] + J->b[j];
  }
}

/* dx = r·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)), dx̂ = dy·g, and dy·x̂ (for the gain's gradient). */
CLONES static void layernorm_grad_rows(const pointwise_job *J, int r0, int r1) {
  const int d = J->d, d8 = d & ~7;
  for (int row = r0; row < r1; row++) {
    const size_t o = (size_t)row * d;
    const float *x = J->x + o, *dy = J->dy + o;
    float *dx = J->dx + o, *dyxh = J->dyxhat + o;
    const float mean = J->mean[row], r = J->rstd[row];
    v8 s1 = {0}, s2 = {0};
    int j = 0;
    for (; j < d8; j += 8) {
      const v8 xh = (*(const v8u *)(x + j) - mean) * r;
      const v8 dyv = *(const v8u *)(dy + j);
      const v8 dxh = dyv * *(const v8u *)(J->g + j);
      s1 += dxh;
      s2 += dxh * xh;
      *(v8u *)(dyxh + j) = dyv * xh;
    }
    float m1 = hsum(&s1), m2 = hsum(&s2);
    for (; j < d; j++) {
      const float xh = (x[j] - mean) * r, dxh = dy[j] * J->g[j];
      m1 += dxh;
      m2 += dxh * xh;
      dyxh[j] = dy[j] * xh;
    }
    m1 /= (float)d;
    m2 /= (float)d;
    for (j = 0; j < d8; j += 8) {
      const v8 xh = (*(const v8u *)(x + j) - mean) * r;
      *(v8u *)(dx + j) = r * (*(const v8u *)(dy + j) * *(const v8u *)(J->g + j) - m1 - xh * m2);
    }
    for (; j < d; j++) dx[j] = r * (dy[j] * J->g[j] - m1 - (x[j] - mean) * r * m2);
  }
}

/* y = x·σ(z), z = x(a + b x²); with dy, dx = dy·σ(z)·(1 + x(1 − σ(z))·(a + 3b x²)) instead. */
CLONES static void gelu_range(const pointwise_job *J, int64_t i0, int64_t i1) {
  int64_t i = i0;
  const float a = J->ga, b = J->gb;
  for (; i + 8 <= i1; i += 8) {
    const v8 x = *(const v8u *)(J->x + i);
    const v8 sg = sigmoid8(x * (a + b * x * x));
    if (J->dy)
      *(v8u *)(J->dx + i) = *(const v8u *)(J->dy + i) * sg * (1.0f + x * (1.0f - sg) * (a + 3.0f * b * x * x));
    else
      *(v8u *)(J->y + i) = x * sg;
  }
  for (; i < i1; i++) {
    const float x = J->x[i], sg = sigmoid1(x * (a + b * x * x));
    if (J->dy) J->dx[i] = J->dy[i] * sg * (1.0f + x * (1.0f - sg) * (a + 3.0f * b * x * x));
    else J->y[i] = x * sg;
  }
}


/*
 * Rotary embedding in the rotate-half layout: for x [N, H, hd] and tables c, s [N, hd] shared by
 * the H heads of a row, y = x·c + rotate_half(x)·s (rotate_half(x) = [−x₂, x₁]); with `inverse`
 * the transposed map, which is the gradient: dx = dy·c + rotate_halfᵀ(dy·s) — one kernel
 * instead of a product, two reshapes and three elementwise ops.
 */
CLONES static void rope_rows(const float *x, const float *c, const float *s, float *y, int64_t N, int H,
                             int hd, int inverse) {
  const int h2 = hd / 2, h8 = h2 & ~7;
  for (int64_t n = 0; n < N; n++) {
    const float *cn = c + n * hd, *sn = s + n * hd;
    for (int h = 0; h < H; h++) {
      const size_t o = ((size_t)n * H + h) * hd;
      const float *a = x + o, *b = x + o + h2;
      float *ya = y + o, *yb = y + o + h2;
      int j = 0;
      for (; j < h8; j += 8) {
        const v8 av = *(const v8u *)(a + j), bv = *(const v8u *)(b + j);
        const v8 ca = *(const v8u *)(cn + j), cb = *(const v8u *)(cn + h2 + j);
        const v8 sa = *(const v8u *)(sn + j), sb = *(const v8u *)(sn + h2 + j);
        if (inverse) {
          *(v8u *)(ya + j) = av * ca + bv * sb;
          *(v8u *)(yb + j) = bv * cb - av * sa;
        } else {
          *(v8u *)(ya + j) = av * ca - bv * sa;
          *(v8u *)(yb + j) = bv * cb + av * sb;
        }
      }
      for (; j < h2; j++) {
        const float av = a[j], bv = b[j];
        if (inverse) {
          ya[j] = av * cn[j] + bv * sn[h2 + j];
          yb[j] = bv * cn[h2 + j] - av * sn[j];
        } else {
          ya[j] = av * cn[j] - bv * sn[j];
          yb[j] = bv * cn[h2 + j] + av * sn[h2 + j];
        }
      }
    }
  }
}

static napi_value throw_error(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static int get_i64(napi_env env, napi_value v, int64_t *out) {
  return napi_get_value_int64(env, v, out) == napi_ok;
}

/* load([path]) → name of the library that provides cblas_sgemm; throws when none does. */
static napi_value load(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char wanted[256] = "";
  if (argc >= 1) {
    napi_valuetype t;
    napi_typeof(env, argv[0], &t);
    if (t == napi_string) {
      size_t len;
      napi_get_value_string_utf8(env, argv[0], wanted, sizeof wanted, &len);
    }
  }
  if (!sgemm) {
    size_t n = wanted[0] ? 1 : sizeof candidates / sizeof candidates[0];
    for (size_t i = 0; i < n && !sgemm; i++) {
      const char *name = wanted[0] ? wanted : candidates[i];
      void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (!h) continue;
      sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
      if (!sgemm) {
        dlclose(h);
        continue;
      }
      set_threads = (set_threads_fn)dlsym(h, "openblas_set_num_threads");
      get_threads = (get_threads_fn)dlsym(h, "openblas_get_num_threads");
      strncpy(library, name, sizeof library - 1);
      current_threads = max_threads = get_threads ? get_threads() : 0;
    }
    if (!sgemm) return throw_error(env, "no shared library providing cblas_sgemm was found");
  }
  napi_value out;
  napi_create_string_utf8(env, library, NAPI_AUTO_LENGTH, &out);
  return out;
}

/* threads([n]) sets the BLAS thread count when n > 0 and returns the current one (-1: unknown). */
static napi_value threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t n = 0;
  if (argc >= 1 && get_i64(env, argv[0], &n) && n > 0 && set_threads) {
    set_threads((int)n);
    current_threads = max_threads = (int)n;
  }
  napi_value out;
  napi_create_int32(env, max_threads > 0 ? max_threads : -1, &out);
  return out;
}

static napi_value gemm_batched(napi_env env, napi_callback_info info) {
  size_t argc = 13;
  napi_value argv[13];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (!sgemm) return throw_error(env, "gemmBatched: call load() first");
  if (argc != 13) return throw_error(env, "gemmBatched: expected 13 arguments");
  void *data;
  size_t bytes;
  if (napi_get_arraybuffer_info(env, argv[0], &data, &bytes) != napi_ok) {
    return throw_error(env, "gemmBatched: heap must be an ArrayBuffer");
  }
  int64_t v[12];
  for (int i = 0; i < 12; i++) {
    if (!get_i64(env, argv[i + 1], &v[i])) return throw_error(env, "gemmBatched: arguments must be numbers");
  }
  const int64_t batch = v[0], m = v[1], n = v[2], k = v[3];
  const int ta = v[4] != 0, tb = v[5] != 0;
  const int64_t a_off = v[6], a_stride = v[7], b_off = v[8], b_stride = v[9], c_off = v[10], bias_off = v[11];
  const int64_t floats = (int64_t)(bytes / sizeof(float));
  const int64_t last = batch > 0 ? batch - 1 : 0;
  if (batch < 0 || m <= 0 || n <= 0 || k <= 0 || a_off < 0 || b_off < 0 || c_off < 0 ||
      a_off + last * a_stride + m * k > floats || b_off + last * b_stride + k * n > floats ||
      c_off + batch * m * n > floats || bias_off + n > floats) {
    return throw_error(env, "gemmBatched: operands fall outside the heap");
  }
  float *heap = (float *)data;
  if (batch == 1 && !ta && m <= FEW_ROWS && few_rows_available()) {
    few_rows_job J = {heap + a_off, heap + b_off, bias_off >= 0 ? heap + bias_off : NULL, heap + c_off, (int)m, (int)n, (int)k, tb};
    few_rows(&J);
    return NULL;
  }
  if (set_threads && max_threads > 1) {
    const int want = batch * m * n * k < SMALL_PRODUCT ? 1 : max_threads;
    if (want != current_threads) {
      set_threads(want);
      current_threads = want;
    }
  }
  const int lda = ta ? (int)m : (int)k;
  const int ldb = tb ? (int)k : (int)n;
  for (int64_t i = 0; i < batch; i++) {
    float *c = heap + c_off + i * m * n;
    float beta = 0.0f;
    if (bias_off >= 0) {
      for (int64_t r = 0; r < m; r++) memcpy(c + r * n, heap + bias_off, (size_t)n * sizeof(float));
      beta = 1.0f;
    }
    sgemm(RowMajor, ta ? Trans : NoTrans, tb ? Trans : NoTrans, (int)m, (int)n, (int)k, 1.0f,
          heap + a_off + i * a_stride, lda, heap + b_off + i * b_stride, ldb, beta, c, (int)n);
  }
  return NULL;
}


/*
 * headRows(heap, rows, V, zOff, targetsOff, aOff, bOff, lpOff, entOff): the statistics of
 * head_job on the heap (offsets in 4-byte elements; bOff < 0: no b).
 */
static napi_value head_rows(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 9) return throw_error(env, "headRows: expected 9 arguments");
  if (!few_rows_available()) return throw_error(env, "headRows: needs a CPU with AVX2 and FMA");
  void *data;
  size_t bytes;
  if (napi_get_arraybuffer_info(env, argv[0], &data, &bytes) != napi_ok) {
    return throw_error(env, "headRows: heap must be an ArrayBuffer");
  }
  int64_t v[8];
  for (int i = 0; i < 8; i++) {
    if (!get_i64(env, argv[i + 1], &v[i])) return throw_error(env, "headRows: arguments must be numbers");
  }
  const int64_t rows = v[0], V = v[1], z = v[2], t = v[3], a = v[4], b = v[5], lp = v[6], ent = v[7];
  const int64_t floats = (int64_t)(bytes / sizeof(float));
  if (rows <= 0 || V <= 0 || z < 0 || t < 0 || a < 0 || lp < 0 || ent < 0 || z + rows * V > floats ||
      t + rows > floats || a + rows * V > floats || b + rows * V > floats || lp + rows > floats ||
      ent + rows > floats) {
    return throw_error(env, "headRows: operands fall outside the heap");
  }
  float *heap = (float *)data;
  head_job J = {heap + z, (const int32_t *)(heap + t), heap + a, b >= 0 ? heap + b : NULL, heap + lp, heap + ent,
                (int)rows, (int)V};
  if (rows > 1 && max_threads != 1) run_two(head_rows_part, &J);
  else head_rows_vec(&J, 0, (int)rows);
  return NULL;
}

/*
 * softmax(heap, rows, tk, tq, h, xOff, maskOff, maskBatch, outOff, dyOff): with dyOff < 0 the
 * masked softmax of softmax_job into out; otherwise x holds the probabilities p and out gets
 * the gradient for dy. Offsets in floats.
 */
static napi_value softmax_js(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 10) return throw_error(env, "softmax: expected 10 arguments");
  if (!few_rows_available()) return throw_error(env, "softmax: needs a CPU with AVX2 and FMA");
  void *data;
  size_t bytes;
  if (napi_get_arraybuffer_info(env, argv[0], &data, &bytes) != napi_ok) {
    return throw_error(env, "softmax: heap must be an ArrayBuffer");
  }
  int64_t v[9];
  for (int i = 0; i < 9; i++) {
    if (!get_i64(env, argv[i + 1], &v[i])) return throw_error(env, "softmax: arguments must be numbers");
  }
  const int64_t rows = v[0], tk = v[1], tq = v[2], h = v[3], x = v[4], mk = v[5], mb = v[6], out = v[7], dy = v[8];
  const int64_t floats = (int64_t)(bytes / sizeof(float));
  const int64_t maskEnd = dy >= 0 ? 0 : mk + (rows / (h * tq) - 1) * mb + tq * tk;
  if (rows <= 0 || tk <= 0 || tq <= 0 || h <= 0 || rows % (h * tq) != 0 || x < 0 || out < 0 ||
      x + rows * tk > floats || out + rows * tk > floats || dy + rows * tk > floats ||
      (dy < 0 && (mk < 0 || mb < 0 || maskEnd > floats))) {
    return throw_error(env, "softmax: operands fall outside the heap");
  }
  float *heap = (float *)data;
  softmax_job J = {heap + x, dy < 0 ? heap + mk : NULL, dy >= 0 ? heap + dy : NULL, heap + out,
                   (int)rows, (int)tk, (int)tq, (int)h, mb};
  if (rows * tk >= (1 << 16) && max_threads != 1) run_two(softmax_part, &J);
  else softmax_part(&J, 0), softmax_part(&J, 1);
  return NULL;
}

/*
 * swiglu(heap, n, aOff, bOff, yOff, dyOff, daOff, dbOff): with dyOff < 0, y = silu(a)·b;
 * otherwise the gradients da and db for dy (yOff unused). Offsets in floats.
 */
static napi_value swiglu_js(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 8) return throw_error(env, "swiglu: expected 8 arguments");
  if (!few_rows_available()) return throw_error(env, "swiglu: needs a CPU with AVX2 and FMA");
  void *data;
  size_t bytes;
  if (napi_get_arraybuffer_info(env, argv[0], &data, &bytes) != napi_ok) {
    return throw_error(env, "swiglu: heap must be an ArrayBuffer");
  }
  int64_t v[7];
  for (int i = 0; i < 7; i++) {
    if (!get_i64(env, argv[i + 1], &v[i])) return throw_error(env, "swiglu: arguments must be numbers");
  }
  const int64_t n = v[0], a = v[1], b = v[2], y = v[3], dy = v[4], da = v[5], db = v[6];
  const int64_t floats = (int64_t)(bytes / sizeof(float));
  const int grad = dy >= 0;
  if (n <= 0 || a < 0 || b < 0 || a + n > floats || b + n > floats ||
      (!grad && (y < 0 || y + n > floats)) ||
      (grad && (da < 0 || db < 0 || dy + n > floats || da + n > floats || db + n > floats))) {
    return throw_error(env, "swiglu: operands fall outside the heap");
  }
  float *heap = (float *)data;
  swiglu_job J = {heap + a, heap + b, grad ? heap + dy : NULL, grad ? NULL : heap + y,
                  grad ? heap + da : NULL, grad ? heap + db : NULL, n};
  if (n >= (1 << 16) && max_threads != 1) run_two(swiglu_part, &J);
  else swiglu_range(&J, 0, n);
  return NULL;
}

/*
 * rmsnorm(heap, rows, d, eps, xOff, gOff, rOff, yOff, dyOff, dxOff): with dyOff < 0 the
 * forward pass into y (and r when rOff ≥ 0); otherwise dx for dy from x, g and the forward
 * pass's r. Offsets in floats.
 */
static napi_value rmsnorm_js(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 10) return throw_error(env, "rmsnorm: expected 10 arguments");
  if (!few_rows_available()) return throw_error(env, "rmsnorm: needs a CPU with AVX2 and FMA");
  void *data;
  size_t bytes;
  if (napi_get_arraybuffer_info(env, argv[0], &data, &bytes) != napi_ok) {
    return throw_error(env, "rmsnorm: heap must be an ArrayBuffer");
  }
  double eps;
  if (napi_get_value_double(env, argv[3], &eps) != napi_ok) return throw_error(env, "rmsnorm: eps must be a number");
  int64_t v[9];
  for (int i = 0; i < 9; i++) {
    if (i == 2) continue;
    if (!get_i64(env, argv[i + 1], &v[i])) return throw_error(env, "rmsnorm: arguments must be numbers");
  }
  const int64_t rows = v[0], d = v[1], x = v[3], g = v[4], r = v[5], y = v[6], dy = v[7], dx = v[8];
  const int64_t floats = (int64_t)(bytes / sizeof(float));
  const int grad = dy >= 0;
  if (rows <= 0 || d <= 0 || x < 0 || g < 0 || x + rows * d > floats || g + d > floats || r + rows > floats ||
      (!grad && (y < 0 || y + rows * d > floats)) ||
      (grad && (r < 0 || dx < 0 || dy + rows * d > floats || dx + rows * d > floats))) {
    return throw_error(env, "rmsnorm: operands fall outside the heap");
  }
  float *heap = (float *)data;
  rmsnorm_job J = {heap + x, heap + g, grad ? heap + dy : NULL, grad ? NULL : heap + y,
                   r >= 0 ? heap + r : NULL, grad ? heap + dx : NULL, (int)rows, (int)d, (float)eps};
  if (rows > 1 && rows * d >= (1 << 16) && max_threads != 1) run_two(rmsnorm_part, &J);
  else rmsnorm_rows(&J, 0, (int)rows);
  return NULL;
}

/*
 * layernorm(heap, rows, d, eps, xOff, gOff, bOff, yOff, meanOff, rstdOff, dyOff, dxOff,
 * dyxhatOff): with dyOff < 0 the forward pass into y (and the rows' mean and r when meanOff ≥ 0);
 * otherwise the gradient dx and dy·x̂ from x, g, mean and r (bOff, yOff unused). Offsets in floats.
 */
static napi_value layernorm_js(napi_env env, napi_callback_info info) {
  size_t argc = 13;
  napi_value argv[13];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 13) return throw_error(env, "layernorm: expected 13 arguments");
  if (!few_rows_available()) return throw_error(env, "layernorm: needs a CPU with AVX2 and FMA");
  void *data;
  size_t bytes;
  double eps;
  if (napi_get_arraybuffer_info(env, argv[0], &data, &bytes) != napi_ok) {
    return throw_error(env, "layernorm: heap must be an ArrayBuffer");
  }
  if (napi_get_value_double(env, argv[3], &eps) != napi_ok) return throw_error(env, "layernorm: eps must be a number");
  int64_t v[13];
  for (int i = 1; i < 13; i++) {
    if (i == 3) continue;
    if (!get_i64(env, argv[i], &v[i])) return throw_error(env, "layernorm: arguments must be numbers");
  }
  const int64_t rows = v[1], d = v[2], x = v[4], g = v[5], b = v[6], y = v[7], mean = v[8], rstd = v[9], dy = v[10],
                dx = v[11], dyxhat = v[12];
  const int64_t floats = (int64_t)(bytes / sizeof(float));
  const int grad = dy >= 0;
  const int64_t nd = rows * d;
  if (rows <= 0 || d <= 0 || x < 0 || g < 0 || x + nd > floats || g + d > floats ||
      (!grad && (b < 0 || y < 0 || y + nd > floats || b + d > floats)) ||
      ((grad || mean >= 0) && (mean < 0 || rstd < 0 || mean + rows > floats || rstd + rows > floats)) ||
      (grad && (dx < 0 || dyxhat < 0 || dy + nd > floats || dx + nd > floats || dyxhat + nd > floats))) {
    return throw_error(env, "layernorm: operands fall outside the heap");
  }
  float *heap = (float *)data;
  pointwise_job J = {heap + x, heap + g, grad ? NULL : heap + b, grad ? NULL : heap + y, (int)rows, (int)d,
                     (float)eps, 0, 0, 0, mean >= 0 ? heap + mean : NULL, mean >= 0 ? heap + rstd : NULL,
                     grad ? heap + dy : NULL, grad ? heap + dx : NULL, grad ? heap + dyxhat : NULL};
  if (grad) layernorm_grad_rows(&J, 0, (int)rows);
  else layernorm_rows(&J, 0, (int)rows);
  return NULL;
}

/* gelu(heap, n, a, b, xOff, yOff, dyOff, dxOff): y = x·σ(x(a + b·x²)), or with dyOff ≥ 0 its gradient dx. */
static napi_value gelu_js(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 8) return throw_error(env, "gelu: expected 8 arguments");
  if (!few_rows_available()) return throw_error(env, "gelu: needs a CPU with AVX2 and FMA");
  void *data;
  size_t bytes;
  double ga, gb;
  int64_t n, x, y, dy, dx;
  if (napi_get_arraybuffer_info(env, argv[0], &data, &bytes) != napi_ok) {
    return throw_error(env, "gelu: heap must be an ArrayBuffer");
  }
  if (!get_i64(env, argv[1], &n) || napi_get_value_double(env, argv[2], &ga) != napi_ok ||
      napi_get_value_double(env, argv[3], &gb) != napi_ok || !get_i64(env, argv[4], &x) || !get_i64(env, argv[5], &y) ||
      !get_i64(env, argv[6], &dy) || !get_i64(env, argv[7], &dx)) {
    return throw_error(env, "gelu: arguments must be numbers");
  }
  const int64_t floats = (int64_t)(bytes / sizeof(float));
  const int grad = dy >= 0;
  if (n <= 0 || x < 0 || x + n > floats || (!grad && (y < 0 || y + n > floats)) ||
      (grad && (dx < 0 || dy + n > floats || dx + n > floats))) {
    return throw_error(env, "gelu: operands fall outside the heap");
  }
  float *heap = (float *)data;
  pointwise_job J = {heap + x, NULL, NULL, grad ? NULL : heap + y, 0, 0, 0, (float)ga, (float)gb, n,
                     NULL, NULL, grad ? heap + dy : NULL, grad ? heap + dx : NULL, NULL};
  gelu_range(&J, 0, n);
  return NULL;
}

/* rope(heap, N, H, hd, inverse, xOff, cOff, sOff, yOff): rope_rows on the heap. */
static napi_value rope_js(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 9) return throw_error(env, "rope: expected 9 arguments");
  if (!few_rows_available()) return throw_error(env, "rope: needs a CPU with AVX2 and FMA");
  void *data;
  size_t bytes;
  if (napi_get_arraybuffer_info(env, argv[0], &data, &bytes) != napi_ok) {
    return throw_error(env, "rope: heap must be an ArrayBuffer");
  }
  int64_t v[8];
  for (int i = 0; i < 8; i++) {
    if (!get_i64(env, argv[i + 1], &v[i])) return throw_error(env, "rope: arguments must be numbers");
  }
  const int64_t N = v[0], H = v[1], hd = v[2], inverse = v[3], x = v[4], c = v[5], sn = v[6], y = v[7];
  const int64_t floats = (int64_t)(bytes / sizeof(float));
  if (N <= 0 || H <= 0 || hd <= 0 || hd % 2 != 0 || x < 0 || c < 0 || sn < 0 || y < 0 || x + N * H * hd > floats ||
      y + N * H * hd > floats || c + N * hd > floats || sn + N * hd > floats) {
    return throw_error(env, "rope: operands fall outside the heap");
  }
  float *heap = (float *)data;
  rope_rows(heap + x, heap + c, heap + sn, heap + y, N, (int)H, (int)hd, inverse != 0);
  return NULL;
}

/* fewRows() → whether the few-row products and headRows run here (x86-64 with AVX2 and FMA). */
static napi_value few_rows_js(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  napi_get_boolean(env, few_rows_available(), &out);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"load", NULL, load, NULL, NULL, NULL, napi_default, NULL},
      {"threads", NULL, threads, NULL, NULL, NULL, napi_default, NULL},
      {"gemmBatched", NULL, gemm_batched, NULL, NULL, NULL, napi_default, NULL},
      {"headRows", NULL, head_rows, NULL, NULL, NULL, napi_default, NULL},
      {"fewRows", NULL, few_rows_js, NULL, NULL, NULL, napi_default, NULL},
      {"softmax", NULL, softmax_js, NULL, NULL, NULL, napi_default, NULL},
      {"swiglu", NULL, swiglu_js, NULL, NULL, NULL, napi_default, NULL},
      {"rmsnorm", NULL, rmsnorm_js, NULL, NULL, NULL, napi_default, NULL},
      {"layernorm", NULL, layernorm_js, NULL, NULL, NULL, napi_default, NULL},
      {"gelu", NULL, gelu_js, NULL, NULL, NULL, napi_default, NULL},
      {"rope", NULL, rope_js, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

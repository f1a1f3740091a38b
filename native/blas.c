/*
 * Node-API addon: single-precision matrix products through the system's CBLAS (OpenBLAS on
 * Debian), operating in place on the wasm backend's heap.
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
#include <node_api.h>
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

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"load", NULL, load, NULL, NULL, NULL, napi_default, NULL},
      {"threads", NULL, threads, NULL, NULL, NULL, napi_default, NULL},
      {"gemmBatched", NULL, gemm_batched, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

/* float32 → float16 image casting with the x86 F16C instructions (edtrain.dataset.float16).
 *
 * numpy converts float32 to float16 one value at a time in software (~2 ns a value on x86,
 * where its wheels have no F16C path): the most expensive step of reading a sample. F16C
 * converts eight values per instruction with the same rounding (to nearest, ties to even), so
 * the result is bitwise what ndarray.astype(np.float16) gives for every non-NaN value.
 * pread_rows also reads the rows itself, each into a small buffer that stays in cache, which
 * saves a pass over memory and Python's per-row call overhead. The module is optional: where
 * it is not built, or the CPU lacks F16C (SUPPORTED is False), the package uses numpy.
 *
 * Each row gets a code: 0 fits, 1 a value beyond ±65504 (it would round to infinity),
 * 2 a NaN or infinity.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define EDTRAIN_X86 1

/* Cast `per` values (a multiple of 8); the row's code. */
__attribute__((target("avx,f16c"))) static uint8_t convert_row(const float *src, uint16_t *dst,
                                                               Py_ssize_t per) {
    const __m128i exponent = _mm_set1_epi16(0x7C00);
    __m128i found = _mm_setzero_si128();
    for (Py_ssize_t i = 0; i < per; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(dst + i), h);
        found = _mm_or_si128(found, _mm_cmpeq_epi16(_mm_and_si128(h, exponent), exponent));
    }
    if (_mm_testz_si128(found, found)) {
        return 0;
    }
    const uint32_t *bits = (const uint32_t *)src; /* rare: which problem is it? */
    for (Py_ssize_t i = 0; i < per; i++) {
        if ((bits[i] & 0x7F800000u) == 0x7F800000u) {
            return 2;
        }
    }
    return 1;
}
#else
static uint8_t convert_row(const float *src, uint16_t *dst, Py_ssize_t per) {
    (void)src, (void)dst, (void)per; /* never called: supported() is 0 */
    return 0;
}
#endif

static int supported(void) {
#ifdef EDTRAIN_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
#else
    return 0;
#endif
}

/* Get a buffer of the given item format (one of `formats`, e.g. "ql") and size; -1 with an
 * exception (and nothing held) otherwise. */
static int get_buffer(PyObject *obj, Py_buffer *view, int flags, const char *formats,
                      Py_ssize_t itemsize, const char *what) {
    if (PyObject_GetBuffer(obj, view, flags | PyBUF_FORMAT) < 0) {
        return -1;
    }
    const char *format = view->format ? view->format : "B";
    if (view->itemsize != itemsize || strchr(formats, format[0]) == NULL || format[1] != '\0') {
        PyErr_Format(PyExc_TypeError, "%s must hold format '%c', not '%s'", what, formats[0],
                     format);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* Checks shared by both functions; *per is the values per row of dst. */
static int prepare(PyObject *dst_obj, Py_buffer *dst, Py_ssize_t *per) {
    if (!supported()) {
        PyErr_SetString(PyExc_RuntimeError, "this CPU has no F16C instructions");
        return -1;
    }
    if (get_buffer(dst_obj, dst, PyBUF_WRITABLE | PyBUF_STRIDES, "e", 2, "dst") < 0) {
        return -1;
    }
    Py_ssize_t contiguous = 2;
    for (int d = dst->ndim - 1; d >= 1; d--) { /* each row must be one contiguous block */
        if (dst->strides[d] != contiguous) {
            PyErr_SetString(PyExc_ValueError, "dst rows (all but the first axis) must be "
                                              "C-contiguous");
            PyBuffer_Release(dst);
            return -1;
        }
        contiguous *= dst->shape[d];
    }
    *per = contiguous / 2;
    if (dst->ndim < 2 || *per % 8 != 0) {
        PyErr_SetString(PyExc_ValueError, "dst must be (rows, ...) with a multiple of 8 values "
                                          "per row");
        PyBuffer_Release(dst);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(cast_doc,
             "cast(src, dst) -> bytes\n\n"
             "Cast the float32 array src into the float16 array dst of the same shape (rows "
             "along the first axis, each C-contiguous); one code per row: 0 fits, 1 a value "
             "beyond ±65504, 2 NaN or infinity.");

static PyObject *cast(PyObject *module, PyObject *args) {
    PyObject *src_obj, *dst_obj, *codes = NULL;
    Py_buffer src, dst;
    Py_ssize_t per;
    if (!PyArg_ParseTuple(args, "OO:cast", &src_obj, &dst_obj) ||
        prepare(dst_obj, &dst, &per) < 0) {
        return NULL;
    }
    if (get_buffer(src_obj, &src, PyBUF_C_CONTIGUOUS, "f", 4, "src") < 0) {
        PyBuffer_Release(&dst);
        return NULL;
    }
    Py_ssize_t rows = dst.shape[0];
    if (src.len != rows * per * 4) {
        PyErr_Format(PyExc_ValueError, "src holds %zd values, dst %zd", src.len / 4, rows * per);
    } else if ((codes = PyBytes_FromStringAndSize(NULL, rows)) != NULL) {
        uint8_t *code = (uint8_t *)PyBytes_AS_STRING(codes);
        const float *from = (const float *)src.buf;
        char *to = (char *)dst.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t r = 0; r < rows; r++) {
            code[r] = convert_row(from + r * per, (uint16_t *)(to + r * dst.strides[0]), per);
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    return codes;
}

PyDoc_STRVAR(pread_rows_doc,
             "pread_rows(fd, offsets, dst) -> bytes\n\n"
             "Read float32 rows from the file descriptor fd, row i starting at byte offsets[i] "
             "(int64), and cast them into dst[i] (float16, each row C-contiguous); codes as "
             "cast's. OSError if a read fails, EOFError if the file ends within a row.");

static PyObject *pread_rows(PyObject *module, PyObject *args) {
    int fd;
    PyObject *offsets_obj, *dst_obj, *codes = NULL;
    Py_buffer offsets, dst;
    Py_ssize_t per;
    if (!PyArg_ParseTuple(args, "iOO:pread_rows", &fd, &offsets_obj, &dst_obj) ||
        prepare(dst_obj, &dst, &per) < 0) {
        return NULL;
    }
    if (get_buffer(offsets_obj, &offsets, PyBUF_C_CONTIGUOUS, "ql", 8, "offsets") < 0) {
        PyBuffer_Release(&dst);
        return NULL;
    }
    Py_ssize_t rows = dst.shape[0], row_bytes = per * 4;
    float *scratch = NULL;
    if (offsets.len / 8 != rows) {
        PyErr_Format(PyExc_ValueError, "%zd offsets for %zd rows", offsets.len / 8, rows);
    } else if ((scratch = PyMem_Malloc(row_bytes)) == NULL) {
        PyErr_NoMemory();
    } else if ((codes = PyBytes_FromStringAndSize(NULL, rows)) != NULL) {
        uint8_t *code = (uint8_t *)PyBytes_AS_STRING(codes);
        const int64_t *at = (const int64_t *)offsets.buf;
        char *to = (char *)dst.buf;
        int error = 0; /* errno of a failed read; -1: the file ended */
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t r = 0; r < rows && !error; r++) {
            Py_ssize_t done = 0;
            while (done < row_bytes && !error) {
                ssize_t n = pread(fd, (char *)scratch + done, row_bytes - done, at[r] + done);
                if (n > 0) {
                    done += n;
                } else if (n == 0) {
                    error = -1;
                } else if (errno != EINTR) {
                    error = errno;
                }
            }
            if (!error) {
                code[r] = convert_row(scratch, (uint16_t *)(to + r * dst.strides[0]), per);
            }
        }
        Py_END_ALLOW_THREADS
        if (error) {
            Py_CLEAR(codes);
            if (error > 0) {
                errno = error;
                PyErr_SetFromErrno(PyExc_OSError);
            } else {
                PyErr_SetString(PyExc_EOFError, "the file ends within a row");
            }
        }
    }
    PyMem_Free(scratch);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&dst);
    return codes;
}

static PyMethodDef methods[] = {
    {"cast", cast, METH_VARARGS, cast_doc},
    {"pread_rows", pread_rows, METH_VARARGS, pread_rows_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_float16", "float32 → float16 casting with F16C.", -1, methods,
};

PyMODINIT_FUNC PyInit__float16(void) {
    PyObject *module = PyModule_Create(&module_def);
    if (module != NULL &&
        PyModule_AddObjectRef(module, "SUPPORTED", supported() ? Py_True : Py_False) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}

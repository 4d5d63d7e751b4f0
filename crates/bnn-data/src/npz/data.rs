//! The element storage of a NumPy array, one variant per supported dtype.

/// Elements of an array, typed by the `.npy` dtype they were stored as.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// `|b1`: NumPy bool, one byte, 0 or 1.
    Bool(Vec<bool>),
    /// `|i1`
    I8(Vec<i8>),
    /// `<i2` / `>i2`
    I16(Vec<i16>),
    /// `<i4` / `>i4`
    I32(Vec<i32>),
    /// `<i8` / `>i8`
    I64(Vec<i64>),
    /// `|u1`
    U8(Vec<u8>),
    /// `<u2` / `>u2`
    U16(Vec<u16>),
    /// `<u4` / `>u4`
    U32(Vec<u32>),
    /// `<u8` / `>u8`
    U64(Vec<u64>),
    /// `<f4` / `>f4`
    F32(Vec<f32>),
    /// `<f8` / `>f8`
    F64(Vec<f64>),
}

/// Applies `$e` (an expression over the vector bound to `$v`) to whichever
/// variant `$data` is, rebuilding the same variant.
macro_rules! map_variant {
    ($data:expr, $v:ident => $e:expr) => {
        match $data {
            NpyData::Bool($v) => NpyData::Bool($e),
            NpyData::I8($v) => NpyData::I8($e),
            NpyData::I16($v) => NpyData::I16($e),
            NpyData::I32($v) => NpyData::I32($e),
            NpyData::I64($v) => NpyData::I64($e),
            NpyData::U8($v) => NpyData::U8($e),
            NpyData::U16($v) => NpyData::U16($e),
            NpyData::U32($v) => NpyData::U32($e),
            NpyData::U64($v) => NpyData::U64($e),
            NpyData::F32($v) => NpyData::F32($e),
            NpyData::F64($v) => NpyData::F64($e),
        }
    };
}

impl NpyData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            NpyData::Bool(v) => v.len(),
            NpyData::I8(v) => v.len(),
            NpyData::I16(v) => v.len(),
            NpyData::I32(v) => v.len(),
            NpyData::I64(v) => v.len(),
            NpyData::U8(v) => v.len(),
            NpyData::U16(v) => v.len(),
            NpyData::U32(v) => v.len(),
            NpyData::U64(v) => v.len(),
            NpyData::F32(v) => v.len(),
            NpyData::F64(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// NumPy's name for the dtype, e.g. `"int64"`, for messages.
    pub fn dtype_name(&self) -> &'static str {
        match self {
            NpyData::Bool(_) => "bool",
            NpyData::I8(_) => "int8",
            NpyData::I16(_) => "int16",
            NpyData::I32(_) => "int32",
            NpyData::I64(_) => "int64",
            NpyData::U8(_) => "uint8",
            NpyData::U16(_) => "uint16",
            NpyData::U32(_) => "uint32",
            NpyData::U64(_) => "uint64",
            NpyData::F32(_) => "float32",
            NpyData::F64(_) => "float64",
        }
    }

    /// The elements as `f64`: bools become 0.0/1.0, 64-bit integers beyond
    /// 2^53 are rounded to the nearest representable value.
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            NpyData::Bool(v) => v.iter().map(|&b| f64::from(u8::from(b))).collect(),
            NpyData::I8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::I16(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            NpyData::U8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::U16(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::U32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::U64(v) => v.iter().map(|&x| x as f64).collect(),
            NpyData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::F64(v) => v.clone(),
        }
    }

    /// Reorders elements stored in Fortran (column-major) order for `shape`
    /// into C (row-major) order.
    pub(crate) fn fortran_to_c(self, shape: &[usize]) -> NpyData {
        map_variant!(self, v => fortran_to_c(&v, shape))
    }
}

/// Element `(i0, .., ik)` of a Fortran-order array lives at
/// `sum(i_j * stride_j)` with `stride_0 = 1`, `stride_j = stride_{j-1} *
/// shape_{j-1}`; walk the indices in C order and gather.
fn fortran_to_c<T: Copy>(v: &[T], shape: &[usize]) -> Vec<T> {
    if shape.iter().filter(|&&d| d > 1).count() <= 1 {
        return v.to_vec();
    }
    let mut strides = Vec::with_capacity(shape.len());
    let mut s = 1;
    for &d in shape {
        strides.push(s);
        s *= d;
    }
    let mut index = vec![0usize; shape.len()];
    let mut out = Vec::with_capacity(v.len());
    for _ in 0..v.len() {
        let offset: usize = index.iter().zip(&strides).map(|(i, s)| i * s).sum();
        out.push(v[offset]);
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortran_2d_is_transposed() {
        // [[1, 2, 3], [4, 5, 6]] stored column by column.
        let f = NpyData::I32(vec![1, 4, 2, 5, 3, 6]);
        assert_eq!(
            f.fortran_to_c(&[2, 3]),
            NpyData::I32(vec![1, 2, 3, 4, 5, 6])
        );
    }

    #[test]
    fn fortran_3d() {
        // a[i][j][k] = 100i + 10j + k, shape (2, 2, 3), stored Fortran order.
        let shape = [2, 2, 3];
        let mut f = Vec::new();
        for k in 0..3 {
            for j in 0..2 {
                for i in 0..2 {
                    f.push(100 * i + 10 * j + k);
                }
            }
        }
        let c = fortran_to_c(&f, &shape);
        let expected: Vec<i32> = (0..2)
            .flat_map(|i| (0..2).flat_map(move |j| (0..3).map(move |k| 100 * i + 10 * j + k)))
            .collect();
        assert_eq!(c, expected);
    }

    #[test]
    fn conversions() {
        assert_eq!(NpyData::Bool(vec![true, false]).to_f64(), [1.0, 0.0]);
        assert_eq!(NpyData::I8(vec![-1, 1]).to_f64(), [-1.0, 1.0]);
        assert_eq!(NpyData::F32(vec![0.5]).to_f64(), [0.5]);
        assert_eq!(NpyData::U16(vec![7]).dtype_name(), "uint16");
        assert!(NpyData::F64(vec![]).is_empty());
    }
}

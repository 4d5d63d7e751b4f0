//! Matrix products for the backward pass, split over rayon in fixed tiles of
//! the output. Each output element is computed by one sgemm call whose shape
//! does not depend on the thread count, so results are bit-identical for any
//! `RAYON_NUM_THREADS`.
//!
//! Every sgemm call packs its rows of `a` and its columns of `b` first; the
//! tiles are wide, so that a dense layer's wide input (a CNN's flattened
//! map, thousands of features) is packed once or twice per product rather
//! than once per 32 rows of the output.

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, ArrayView2, Axis};
use rayon::prelude::*;

/// Output rows per tile.
const ROWS: usize = 128;
/// Output columns per tile.
const COLS: usize = 256;

/// `aᵀ · b` for `a`: k×m and `b`: k×n (a weight gradient `gradᵀ · x`).
pub fn at_b(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Array2<f32> {
    let at = a.t();
    a_b(at, b)
}

/// `a · b` for `a`: m×k and `b`: k×n.
pub fn a_b(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Array2<f32> {
    assert_eq!(a.ncols(), b.nrows(), "inner dimensions");
    let mut out = Array2::<f32>::zeros((a.nrows(), b.ncols()));
    let mut tiles = Vec::new();
    for (i, mut rest) in out.axis_chunks_iter_mut(Axis(0), ROWS).enumerate() {
        let mut c0 = 0;
        while rest.ncols() > COLS {
            let (tile, right) = rest.split_at(Axis(1), COLS);
            tiles.push((i * ROWS, c0, tile));
            (rest, c0) = (right, c0 + COLS);
        }
        tiles.push((i * ROWS, c0, rest));
    }
    tiles.into_par_iter().for_each(|(r0, c0, mut tile)| {
        let (rows, cols) = tile.dim();
        let a = a.slice(s![r0..r0 + rows, ..]);
        let b = b.slice(s![.., c0..c0 + cols]);
        general_mat_mul(1.0, &a, &b, 0.0, &mut tile);
    });
    out
}

/// `a · bᵀ` for `a`: m×k and `b`: n×k (a forward pass `x · Wᵀ`).
pub fn a_bt(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Array2<f32> {
    a_b(a, b.t())
}

/// Column sums in row order (a fixed reduction order).
pub fn column_sums(a: ArrayView2<'_, f32>) -> Vec<f32> {
    let mut out = vec![0f32; a.ncols()];
    for row in a.rows() {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &Array2<f32>, b: &Array2<f32>) -> Array2<f32> {
        let mut out = Array2::zeros((a.nrows(), b.ncols()));
        for i in 0..a.nrows() {
            for j in 0..b.ncols() {
                out[[i, j]] = (0..a.ncols()).map(|k| a[[i, k]] * b[[k, j]]).sum();
            }
        }
        out
    }

    #[test]
    fn products_match_naive_and_ignore_thread_count() {
        let a = Array2::from_shape_fn((70, 9), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 5.0);
        let b = Array2::from_shape_fn((9, 13), |(i, j)| ((i * 5 + j) % 7) as f32 - 3.0);
        assert_eq!(a_b(a.view(), b.view()), naive(&a, &b));
        let at = a.t().to_owned();
        assert_eq!(at_b(at.view(), b.view()), naive(&a, &b));
        let bt = b.t().to_owned();
        assert_eq!(a_bt(a.view(), bt.view()), naive(&a, &b));
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        // Fractional values, over several tiles of rows and columns, the
        // last of each partial: the same bits with one thread as with the
        // global pool, within rounding of the naive product.
        let x = Array2::from_shape_fn((300, 300), |(i, j)| ((i * j) as f32 * 0.37).sin());
        let y = Array2::from_shape_fn((300, 600), |(i, j)| ((i + 2 * j) as f32 * 0.11).cos());
        let product = a_b(x.view(), y.view());
        assert_eq!(one.install(|| a_b(x.view(), y.view())), product);
        let want = naive(&x, &y);
        assert_eq!((product.dim(), want.dim()), ((300, 600), (300, 600)));
        for (p, q) in product.iter().zip(want.iter()) {
            assert!((p - q).abs() <= 1e-4 * (1.0 + q.abs()), "{p} vs {q}");
        }
    }

    #[test]
    fn column_sums_by_hand() {
        let a = ndarray::array![[1.0f32, -2.0, 0.5], [3.0, 4.0, 0.25], [-1.0, 0.0, 2.0]];
        assert_eq!(column_sums(a.view()), vec![3.0, 2.0, 2.75]);
        // A transposed view walks its rows, not the storage order.
        assert_eq!(column_sums(a.t()), vec![-0.5, 7.25, 1.0]);
        assert_eq!(
            column_sums(Array2::<f32>::zeros((0, 2)).view()),
            vec![0.0, 0.0]
        );
        // Row order is the order of the additions: 1e8 + 1 − 1e8 is 0 in
        // f32, where 1e8 − 1e8 + 1 would be 1.
        let b = ndarray::array![[1e8f32], [1.0], [-1e8]];
        assert_eq!(column_sums(b.view()), vec![0.0]);
    }
}

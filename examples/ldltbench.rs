use memsweep::lanes::{self, LANES};
use memsweep::real::Real;
use std::time::Instant;

include!("/tmp/ldlt.rs");

fn main() {
    let n = 16;
    let stride = 16;
    let mut base = vec![0.0f64; n * stride];
    for i in 0..n {
        for j in i..n {
            base[i * stride + j] = if i == j { 10.0 + i as f64 } else { -0.3 / (1.0 + (i + j) as f64) };
        }
    }
    let b0: Vec<f64> = (0..stride).map(|i| if i < n { 1.0 + i as f64 } else { 0.0 }).collect();
    let mut a = base.clone();
    let mut b = b0.clone();
    let mut z = vec![0.0; stride];
    let mut pivot = vec![0.0; stride];
    let reps = 1_000_000;
    let t = Instant::now();
    let mut acc = 0.0;
    for r in 0..reps {
        a.copy_from_slice(&base);
        a[0] += r as f64 * 1e-12;
        b.copy_from_slice(&b0);
        ldlt_factor(&mut a, &mut b, n, stride, &mut z, &mut pivot);
        acc += z[n - 1];
    }
    println!("ldlt {:.1} ns  ({acc})", t.elapsed().as_secs_f64() / reps as f64 * 1e9);
}

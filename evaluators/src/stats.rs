//! The statistics behind `plumb eval compare` and alert rules: is a difference between two
//! samples more than noise? Two-proportion z-tests for rates, Welch's t-test for means, and the
//! two-sample Kolmogorov–Smirnov test for whole distributions.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// A difference `b - a` with its 95% confidence interval and two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Difference {
    pub a: f64,
    pub b: f64,
    pub diff: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub p_value: f64,
}

fn std_normal() -> Normal {
    Normal::new(0.0, 1.0).expect("a standard normal")
}

/// Rates `ka/na` and `kb/nb`: a pooled z-test for the p-value, Wald interval for the CI.
pub fn two_proportions(ka: u64, na: u64, kb: u64, nb: u64) -> Option<Difference> {
    if na == 0 || nb == 0 {
        return None;
    }
    let (pa, pb) = (ka as f64 / na as f64, kb as f64 / nb as f64);
    let (na, nb) = (na as f64, nb as f64);
    let pooled = (ka + kb) as f64 / (na + nb);
    let se_pooled = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    let diff = pb - pa;
    let p_value = if se_pooled > 0.0 {
        2.0 * (1.0 - std_normal().cdf((diff / se_pooled).abs()))
    } else if diff == 0.0 {
        1.0
    } else {
        0.0
    };
    let se = (pa * (1.0 - pa) / na + pb * (1.0 - pb) / nb).sqrt();
    Some(Difference {
        a: pa,
        b: pb,
        diff,
        ci_low: diff - 1.96 * se,
        ci_high: diff + 1.96 * se,
        p_value,
    })
}

/// Summary of a numeric sample.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Moments {
    pub n: u64,
    pub mean: f64,
    /// Sample variance (n - 1).
    pub variance: f64,
}

impl Moments {
    pub fn of(xs: &[f64]) -> Moments {
        let n = xs.len();
        if n == 0 {
            return Moments::default();
        }
        let mean = xs.iter().sum::<f64>() / n as f64;
        let variance = if n > 1 {
            xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Moments {
            n: n as u64,
            mean,
            variance,
        }
    }
}

/// Welch's t-test of `b.mean - a.mean`.
pub fn welch(a: Moments, b: Moments) -> Option<Difference> {
    if a.n < 2 || b.n < 2 {
        return None;
    }
    let (va, vb) = (a.variance / a.n as f64, b.variance / b.n as f64);
    let se = (va + vb).sqrt();
    let diff = b.mean - a.mean;
    if se == 0.0 {
        return Some(Difference {
            a: a.mean,
            b: b.mean,
            diff,
            ci_low: diff,
            ci_high: diff,
            p_value: if diff == 0.0 { 1.0 } else { 0.0 },
        });
    }
    let df = (va + vb).powi(2) / (va.powi(2) / (a.n - 1) as f64 + vb.powi(2) / (b.n - 1) as f64);
    let t = StudentsT::new(0.0, 1.0, df).ok()?;
    let p_value = 2.0 * (1.0 - t.cdf((diff / se).abs()));
    let q = t.inverse_cdf(0.975);
    Some(Difference {
        a: a.mean,
        b: b.mean,
        diff,
        ci_low: diff - q * se,
        ci_high: diff + q * se,
        p_value,
    })
}

/// The two-sample Kolmogorov–Smirnov statistic D and its asymptotic p-value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KolmogorovSmirnov {
    pub statistic: f64,
    pub p_value: f64,
}

pub fn kolmogorov_smirnov(a: &[f64], b: &[f64]) -> Option<KolmogorovSmirnov> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut a: Vec<f64> = a.iter().copied().filter(|x| x.is_finite()).collect();
    let mut b: Vec<f64> = b.iter().copied().filter(|x| x.is_finite()).collect();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return None;
    }
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < n && j < m {
        let x = a[i].min(b[j]);
        while i < n && a[i] <= x {
            i += 1;
        }
        while j < m && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n as f64 - j as f64 / m as f64).abs());
    }
    let en = ((n * m) as f64 / (n + m) as f64).sqrt();
    let lambda = (en + 0.12 + 0.11 / en) * d;
    Some(KolmogorovSmirnov {
        statistic: d,
        p_value: kolmogorov_q(lambda),
    })
}

/// The Kolmogorov distribution's tail, Q(λ) = 2 Σ (-1)^(k-1) e^(-2k²λ²).
fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 1e-3 {
        return 1.0;
    }
    let mut sum = 0.0;
    for k in 1..=100 {
        let k = k as f64;
        let term = 2.0 * (-1f64).powf(k - 1.0) * (-2.0 * k * k * lambda * lambda).exp();
        sum += term;
        if term.abs() < 1e-12 {
            break;
        }
    }
    sum.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenfold_failure_rate_is_significant_and_noise_is_not() {
        let d = two_proportions(10, 1000, 100, 1000).unwrap();
        assert!(d.p_value < 1e-6, "{d:?}");
        assert!(d.ci_low > 0.0);
        let d = two_proportions(10, 1000, 13, 1000).unwrap();
        assert!(d.p_value > 0.05, "{d:?}");
    }

    #[test]
    fn welch_matches_a_known_case() {
        // Two samples with means 0.8 and 0.6: clearly different.
        let a = Moments::of(&[0.8, 0.82, 0.78, 0.81, 0.79, 0.8]);
        let b = Moments::of(&[0.6, 0.62, 0.58, 0.61, 0.59, 0.6]);
        let d = welch(a, b).unwrap();
        assert!((d.diff + 0.2).abs() < 1e-9);
        assert!(d.p_value < 1e-6 && d.ci_high < 0.0, "{d:?}");
    }

    #[test]
    fn ks_tells_shifted_distributions_apart() {
        let a: Vec<f64> = (0..500).map(|i| (i % 100) as f64).collect();
        let same: Vec<f64> = (0..400).map(|i| ((i * 7) % 100) as f64).collect();
        let shifted: Vec<f64> = a.iter().map(|x| x + 30.0).collect();
        assert!(kolmogorov_smirnov(&a, &same).unwrap().p_value > 0.05);
        let ks = kolmogorov_smirnov(&a, &shifted).unwrap();
        assert!(
            ks.p_value < 1e-6 && (ks.statistic - 0.3).abs() < 0.01,
            "{ks:?}"
        );
    }
}

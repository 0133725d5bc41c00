//! Interrupts per million resize requests with an exact Poisson confidence
//! interval. The counts of interrupts lost in resize windows are Poisson
//! (fires of Poisson sources inside windows whose timing does not depend on
//! the fires), and so are their sums over replications, so the interval is
//! Garwood's (1936) exact one:
//!
//! - lower = χ²(α/2; 2n) / 2, and 0 for n = 0;
//! - upper = χ²(1 − α/2; 2n + 2) / 2, which for n = 0 is exactly −ln(α/2).
//!
//! The χ² quantiles come from `statrs`, so embedders of the core get the same
//! intervals as the Python layer, which asks here.

use serde::Serialize;
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

use crate::error::{Error, Result};

/// A count per million resize requests with its exact interval. Without
/// resizes the rate is undefined: `value`, `lower` and `upper` are `None`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatePerMillion {
    /// Events counted.
    pub count: u64,
    /// Resize requests they are counted over.
    pub resizes: u64,
    /// `count` per million resizes.
    pub value: Option<f64>,
    /// Lower end of the interval, per million resizes.
    pub lower: Option<f64>,
    /// Upper end of the interval, per million resizes.
    pub upper: Option<f64>,
    /// The interval's confidence level, in (0, 1).
    pub confidence: f64,
}

fn check_confidence(confidence: f64) -> Result<f64> {
    if confidence > 0.0 && confidence < 1.0 {
        Ok(1.0 - confidence)
    } else {
        Err(Error::InvalidArgument(format!(
            "confidence: must be in (0, 1), got {confidence}"
        )))
    }
}

/// Degrees of freedom past which the χ² quantile is Wilson–Hilferty's: statrs'
/// iterative inverse never converges there (it hung from about 2^53 on), and
/// the approximation's relative error, O(1/dof), is below 1e-9.
const WILSON_HILFERTY_DOF: f64 = 8_589_934_592.0; // 2^33: counts above u32::MAX

/// The `p` quantile of χ² with `dof` degrees of freedom (`dof > 0`).
fn chi2_quantile(p: f64, dof: f64) -> Result<f64> {
    if dof > WILSON_HILFERTY_DOF {
        let z = Normal::new(0.0, 1.0)
            .map_err(|e| Error::InvalidArgument(format!("normal: {e}")))?
            .inverse_cdf(p);
        let v = 2.0 / (9.0 * dof);
        return Ok(dof * (1.0 - v + z * v.sqrt()).powi(3));
    }
    let chi2 = ChiSquared::new(dof)
        .map_err(|e| Error::InvalidArgument(format!("chi-squared with {dof} dof: {e}")))?;
    Ok(chi2.inverse_cdf(p))
}

/// Garwood's exact interval for the mean of a Poisson variable observed as
/// `count`, at `confidence` (0.95 for 95 %): `(lower, upper)`.
pub fn garwood_interval(count: u64, confidence: f64) -> Result<(f64, f64)> {
    let alpha = check_confidence(confidence)?;
    if count == 0 {
        return Ok((0.0, -(alpha / 2.0).ln()));
    }
    let n = count as f64;
    let lower = chi2_quantile(alpha / 2.0, 2.0 * n)? / 2.0;
    let upper = chi2_quantile(1.0 - alpha / 2.0, 2.0 * n + 2.0)? / 2.0;
    Ok((lower, upper))
}

/// `count` events over `resizes` resize requests, per million, with the
/// Garwood interval of `count` scaled the same way.
pub fn per_million(count: u64, resizes: u64, confidence: f64) -> Result<RatePerMillion> {
    let (lower, upper) = garwood_interval(count, confidence)?;
    let scale = (resizes > 0).then(|| 1e6 / resizes as f64);
    Ok(RatePerMillion {
        count,
        resizes,
        value: scale.map(|s| count as f64 * s),
        lower: scale.map(|s| lower * s),
        upper: scale.map(|s| upper * s),
        confidence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn zero_events_have_the_closed_form_upper_bound() {
        let (lo, hi) = garwood_interval(0, 0.95).unwrap();
        assert_eq!(lo.to_bits(), 0f64.to_bits());
        assert!(close(hi, 3.688_879_454_113_936, 1e-15), "{hi}");
    }

    #[test]
    fn intervals_match_published_values_and_bracket_the_count() {
        // Garwood 95 % limits (e.g. the tables of Ulm 1990): n = 1: 0.0253–5.572;
        // n = 10: 4.795–18.39; n = 100: 81.36–121.63.
        for (n, lo, hi) in [
            (1, 0.025_317_8, 5.571_643),
            (10, 4.795_389, 18.390_356),
            (100, 81.363_99, 121.626_79),
        ] {
            let (l, h) = garwood_interval(n, 0.95).unwrap();
            assert!(close(l, lo, 1e-6) && close(h, hi, 1e-6), "{n}: {l} {h}");
        }
        for n in [1, 7, 1_000, 531_401, 5_000_000, u64::from(u32::MAX)] {
            let (l, h) = garwood_interval(n, 0.95).unwrap();
            let x = n as f64;
            assert!(l < x && x < h, "{n}: {l} {h}");
            // Normal approximation for large n: x ± 1.96 √x.
            if n >= 1_000 {
                assert!(close(h - x, 1.96 * x.sqrt(), 0.05), "{n}: {h}");
            }
        }
    }

    #[test]
    fn counts_past_u32_max_finish_and_join_the_exact_interval() {
        // statrs' inverse never returned from about 2^53 on (found by the
        // Python state machines): past 2^32 the quantile is Wilson–Hilferty's.
        let exact = garwood_interval(u64::from(u32::MAX), 0.95).unwrap();
        let approx = garwood_interval(u64::from(u32::MAX) + 1, 0.95).unwrap();
        assert!(close(approx.0, exact.0 + 1.0, 1e-9), "{exact:?} {approx:?}");
        assert!(close(approx.1, exact.1 + 1.0, 1e-9), "{exact:?} {approx:?}");
        for n in [1u64 << 40, 1 << 53, 1 << 63, u64::MAX] {
            for c in [0.5, 0.95, 0.999_999] {
                let (l, h) = garwood_interval(n, c).unwrap();
                let x = n as f64;
                assert!(
                    l <= x && x <= h && l.is_finite() && h.is_finite(),
                    "{n}: {l} {h}"
                );
            }
        }
    }

    #[test]
    fn rates_scale_the_interval_and_are_undefined_without_resizes() {
        let r = per_million(10, 2_000_000, 0.95).unwrap();
        assert_eq!(r.value, Some(5.0));
        let (lo, hi) = garwood_interval(10, 0.95).unwrap();
        assert_eq!((r.lower, r.upper), (Some(lo / 2.0), Some(hi / 2.0)));
        let none = per_million(3, 0, 0.95).unwrap();
        assert_eq!((none.value, none.lower, none.upper), (None, None, None));
        for bad in [0.0, 1.0, -0.5, f64::NAN] {
            assert!(per_million(1, 1, bad).is_err());
        }
    }
}

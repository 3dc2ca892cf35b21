//! Quantization: how positions and velocities fit in snapshots.
//!
//! Positions are `u16` per axis over `0..=extent` (the world size from `Joined`): the step
//! is `extent / 65535`, 0.0153 units in the 1000-unit arena, and the error at most half a
//! step. Velocities are `i8` per axis over `-max_speed..=max_speed`: the step is
//! `max_speed / 127` (1.57 units/s at the arena's 200 units/s).

/// Largest quantized position.
pub const POSITION_STEPS: f32 = 65535.0;
/// Largest quantized velocity magnitude.
pub const VELOCITY_STEPS: f32 = 127.0;

/// Quantizes a coordinate in `0..=extent` (clamped) to a `u16`.
pub fn position(value: f32, extent: f32) -> u16 {
    if extent.is_nan() || extent <= 0.0 || !value.is_finite() {
        return 0;
    }
    let unit = (value / extent).clamp(0.0, 1.0);
    // In range by the clamp; `as` saturates anyway.
    (unit * POSITION_STEPS).round() as u16
}

/// The coordinate a quantized position stands for.
pub fn position_value(q: u16, extent: f32) -> f32 {
    f32::from(q) / POSITION_STEPS * extent
}

/// Quantizes a velocity component in `-max..=max` (clamped) to an `i8`.
pub fn velocity(value: f32, max: f32) -> i8 {
    if max.is_nan() || max <= 0.0 || !value.is_finite() {
        return 0;
    }
    let unit = (value / max).clamp(-1.0, 1.0);
    (unit * VELOCITY_STEPS).round() as i8
}

/// The velocity component a quantized velocity stands for.
pub fn velocity_value(q: i8, max: f32) -> f32 {
    f32::from(q) / VELOCITY_STEPS * max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_roundtrip_is_within_half_a_step() {
        let extent = 1000.0;
        let step = extent / POSITION_STEPS;
        for i in 0..=10_000 {
            let v = i as f32 * 0.1;
            let back = position_value(position(v, extent), extent);
            assert!((back - v).abs() <= step / 2.0 + 1e-4, "{v} -> {back}");
        }
        assert_eq!(position(-5.0, extent), 0);
        assert_eq!(position(1e9, extent), u16::MAX);
        assert_eq!(position(f32::NAN, extent), 0);
    }

    #[test]
    fn velocity_roundtrip_is_within_half_a_step() {
        let max = 200.0;
        let step = max / VELOCITY_STEPS;
        for i in -200..=200 {
            let v = i as f32;
            let back = velocity_value(velocity(v, max), max);
            assert!((back - v).abs() <= step / 2.0 + 1e-3, "{v} -> {back}");
        }
        assert_eq!(velocity(-1e9, max), -127);
        assert_eq!(velocity(f32::INFINITY, max), 0);
    }
}

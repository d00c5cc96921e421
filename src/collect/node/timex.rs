//! `timex` collector: the kernel's NTP clock-discipline state (`node_timex_*`) from a read-only
//! adjtimex(2) call (`modes = 0`; see adjtimex(2) NOTES for the units: `offset` and `jitter` in
//! microseconds, or nanoseconds when `STA_NANO` is set; `freq`, `ppsfreq` and `stabil` in ppm
//! with a 16-bit fraction; `maxerror`, `esterror` and `tick` in microseconds).

use rtime_clock::adjtime::{Timex as RawTimex, adjtimex};

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, Sink};
use crate::host::HostRoot;

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, _host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Timex)
    }
}

struct Timex;

/// adjtimex(2) return value meaning "clock not synchronized".
const TIME_ERROR: i32 = 5;
/// `status` bit: `offset` and `jitter` are in nanoseconds rather than microseconds.
const STA_NANO: i64 = 0x2000;
/// Scaled ppm: parts per million with a 16-bit binary fraction.
const PPM16: f64 = 1_000_000.0 * 65536.0;
const MICRO: f64 = 1_000_000.0;

/// The adjtimex(2) result in node_exporter's units, one field per family.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Values {
    /// 1 when synchronized (return value is not `TIME_ERROR`).
    pub sync_status: f64,
    /// Seconds.
    pub offset: f64,
    /// Ratio (1 + ppm/1e6).
    pub freq: f64,
    /// Seconds.
    pub maxerror: f64,
    /// Seconds.
    pub esterror: f64,
    /// Status bits.
    pub status: f64,
    /// PLL time constant.
    pub constant: f64,
    /// Seconds.
    pub tick: f64,
    /// Hertz.
    pub pps_freq: f64,
    /// Seconds.
    pub pps_jitter: f64,
    /// PPS interval duration (node_exporter reports the raw shift as seconds).
    pub pps_shift: f64,
    /// Hertz.
    pub pps_stability: f64,
    /// Count.
    pub pps_jitter_count: f64,
    /// Count.
    pub pps_calibration_count: f64,
    /// Count.
    pub pps_error_count: f64,
    /// Count.
    pub pps_stability_exceeded_count: f64,
    /// Seconds.
    pub tai: f64,
}

/// Converts a filled `timex` and the adjtimex(2) return value to reported units.
pub fn convert(state: i32, tx: &RawTimex) -> Values {
    let t = &tx.0;
    let divisor = if i64::from(t.status) & STA_NANO != 0 {
        1e9
    } else {
        MICRO
    };
    Values {
        sync_status: if state == TIME_ERROR { 0.0 } else { 1.0 },
        offset: t.offset as f64 / divisor,
        freq: 1.0 + t.freq as f64 / PPM16,
        maxerror: t.maxerror as f64 / MICRO,
        esterror: t.esterror as f64 / MICRO,
        status: f64::from(t.status),
        constant: t.constant as f64,
        tick: t.tick as f64 / MICRO,
        pps_freq: t.ppsfreq as f64 / PPM16,
        pps_jitter: t.jitter as f64 / divisor,
        pps_shift: f64::from(t.shift),
        pps_stability: t.stabil as f64 / PPM16,
        pps_jitter_count: t.jitcnt as f64,
        pps_calibration_count: t.calcnt as f64,
        pps_error_count: t.errcnt as f64,
        pps_stability_exceeded_count: t.stbcnt as f64,
        tai: f64::from(t.tai),
    }
}

/// Writes every family, in node_exporter's order.
pub fn write(sink: &mut Sink, v: &Values) {
    let g = |sink: &mut Sink, name: &str, help: &str, value: f64| sink.gauge(name, help, value);
    let c = |sink: &mut Sink, name: &str, help: &str, value: f64| sink.counter(name, help, value);
    g(
        sink,
        "node_timex_sync_status",
        "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
        v.sync_status,
    );
    g(
        sink,
        "node_timex_offset_seconds",
        "Time offset in between local system and reference clock.",
        v.offset,
    );
    g(
        sink,
        "node_timex_frequency_adjustment_ratio",
        "Local clock frequency adjustment.",
        v.freq,
    );
    g(
        sink,
        "node_timex_maxerror_seconds",
        "Maximum error in seconds.",
        v.maxerror,
    );
    g(
        sink,
        "node_timex_estimated_error_seconds",
        "Estimated error in seconds.",
        v.esterror,
    );
    g(
        sink,
        "node_timex_status",
        "Value of the status array bits.",
        v.status,
    );
    g(
        sink,
        "node_timex_loop_time_constant",
        "Phase-locked loop time constant.",
        v.constant,
    );
    g(
        sink,
        "node_timex_tick_seconds",
        "Seconds between clock ticks.",
        v.tick,
    );
    g(
        sink,
        "node_timex_pps_frequency_hertz",
        "Pulse per second frequency.",
        v.pps_freq,
    );
    g(
        sink,
        "node_timex_pps_jitter_seconds",
        "Pulse per second jitter.",
        v.pps_jitter,
    );
    g(
        sink,
        "node_timex_pps_shift_seconds",
        "Pulse per second interval duration.",
        v.pps_shift,
    );
    g(
        sink,
        "node_timex_pps_stability_hertz",
        "Pulse per second stability, average of recent frequency changes.",
        v.pps_stability,
    );
    c(
        sink,
        "node_timex_pps_jitter_total",
        "Pulse per second count of jitter limit exceeded events.",
        v.pps_jitter_count,
    );
    c(
        sink,
        "node_timex_pps_calibration_total",
        "Pulse per second count of calibration intervals.",
        v.pps_calibration_count,
    );
    c(
        sink,
        "node_timex_pps_error_total",
        "Pulse per second count of calibration errors.",
        v.pps_error_count,
    );
    c(
        sink,
        "node_timex_pps_stability_exceeded_total",
        "Pulse per second count of stability limit exceeded events.",
        v.pps_stability_exceeded_count,
    );
    g(
        sink,
        "node_timex_tai_offset_seconds",
        "International Atomic Time (TAI) offset.",
        v.tai,
    );
}

impl Collector for Timex {
    fn name(&self) -> &'static str {
        "timex"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        let mut tx = RawTimex::new();
        let state = match adjtimex(&mut tx) {
            Ok(s) => s,
            // A seccomp profile or container runtime may forbid even the read-only query;
            // node_exporter then reports no data rather than a failure.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Ok(()),
            Err(source) => {
                return Err(CollectError::Syscall {
                    call: "adjtimex",
                    source,
                });
            }
        };
        write(sink, &convert(state, &tx));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::MetricType;

    fn sample_timex(status: i32) -> RawTimex {
        let mut tx = RawTimex::new();
        tx.0.offset = -1500;
        tx.0.freq = -1_234_567; // ≈ -18.838 ppm
        tx.0.maxerror = 16_000;
        tx.0.esterror = 250;
        tx.0.status = status;
        tx.0.constant = 7;
        tx.0.tick = 10_000;
        tx.0.ppsfreq = 65_536;
        tx.0.jitter = 40;
        tx.0.shift = 4;
        tx.0.stabil = 131_072;
        tx.0.jitcnt = 3;
        tx.0.calcnt = 9;
        tx.0.errcnt = 1;
        tx.0.stbcnt = 2;
        tx.0.tai = 37;
        tx
    }

    #[test]
    fn microsecond_resolution_conversion() {
        let v = convert(0, &sample_timex(0x0001));
        assert_eq!(
            v,
            Values {
                sync_status: 1.0,
                offset: -0.0015,
                freq: 1.0 + -1_234_567.0 / 65_536_000_000.0,
                maxerror: 0.016,
                esterror: 0.00025,
                status: 1.0,
                constant: 7.0,
                tick: 0.01,
                pps_freq: 1e-6,
                pps_jitter: 0.00004,
                pps_shift: 4.0,
                pps_stability: 2e-6,
                pps_jitter_count: 3.0,
                pps_calibration_count: 9.0,
                pps_error_count: 1.0,
                pps_stability_exceeded_count: 2.0,
                tai: 37.0,
            }
        );
        assert_eq!(v.freq, 0.9999811620025635);
    }

    #[test]
    fn nanosecond_resolution_and_unsynchronized() {
        let v = convert(TIME_ERROR, &sample_timex(0x2000 | 0x0040));
        assert_eq!(v.sync_status, 0.0);
        assert_eq!(v.offset, -0.0000015);
        assert_eq!(v.pps_jitter, 0.00000004);
        // maxerror/esterror/tick stay in microseconds whatever STA_NANO says.
        assert_eq!(v.maxerror, 0.016);
        assert_eq!(v.tick, 0.01);
        assert_eq!(v.status, 8256.0);
    }

    #[test]
    fn live_call_writes_every_family() {
        let mut c = Module::build(&Switch::default(), &HostRoot::default());
        let mut sink = Sink::new();
        c.collect(&mut sink).expect("adjtimex");
        let names: Vec<_> = sink.families().map(|f| f.name().to_string()).collect();
        assert_eq!(names.len(), 17, "{names:?}");
        assert_eq!(names[0], "node_timex_sync_status");
        let kinds = sink
            .families()
            .filter(|f| f.kind() == MetricType::Counter)
            .count();
        assert_eq!(kinds, 4);
    }
}

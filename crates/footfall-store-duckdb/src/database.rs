//! Opening a DuckDB database with footfall's own SQL functions registered.
//!
//! The `duckdb` crate has no way to register an aggregate function nor to reach a
//! connection's C handle, so the database is opened through DuckDB's C API here and the
//! crate's [`Connection`]s are made from that handle ([`Database::connect`]).
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr;

use duckdb::{Connection, ffi};

/// An open DuckDB database. Connections made from it keep DuckDB's instance alive on their
/// own; this handle must outlive every [`Database::connect`] and `try_clone` call.
pub struct Database {
    raw: ffi::duckdb_database,
}

// SAFETY: a `duckdb_database` is DuckDB's thread-safe database instance; the handle is
// only read (to connect) until it is closed once, in `drop`.
unsafe impl Send for Database {}
unsafe impl Sync for Database {}

/// DuckDB settings every database is opened with, before the caller's.
///
/// `compressed_materialization` off: that optimizer wraps join keys in a projection that
/// narrows them (`__internal_compress_integral_uinteger(session_id, min)`) whenever the
/// column's statistics say the values fit a smaller type, and the projection stops the
/// join's dynamic filters (the build side's smallest and largest session id) from
/// reaching the scan below it. Whether the ids fit depends on the data: on a 10M-event
/// store, after another site's 100,000-event load, every 30-day visit breakdown read all
/// 2.46M events of the range to find the ~25 visits open at its start instead of a few
/// row groups: `visit:browser` 36-40 ms against 14.5-15.7 with it off, the unfiltered
/// dashboard 417-448 against 266-276 ms (`footfall bench-sql`, alternating, twenty-third
/// session; BENCHMARKS.md History).
pub const PLANNER_SETTINGS: &[(&str, &str)] =
    &[("disabled_optimizers", "compressed_materialization")];

impl Database {
    /// Opens the file at `path` (created if missing), or a database in memory when `None`,
    /// with [`PLANNER_SETTINGS`] and DuckDB `settings` (`("max_memory", "128MB")`, …), and
    /// registers footfall's functions ([`crate::uniq`], `clock`, `visit_map`, `visit_collect`).
    pub fn open(path: Option<&Path>, settings: &[(&str, &str)]) -> Result<Self, String> {
        let c_path = match path {
            Some(p) => Some(
                CString::new(p.as_os_str().as_encoded_bytes())
                    .map_err(|_| format!("{} contains a NUL byte", p.display()))?,
            ),
            None => None,
        };
        // SAFETY: every handle created here is checked, used while valid and released on
        // each path out.
        unsafe {
            let mut config: ffi::duckdb_config = ptr::null_mut();
            if ffi::duckdb_create_config(&mut config) != ffi::duckdb_state_DuckDBSuccess {
                return Err("cannot create a DuckDB configuration".into());
            }
            for (name, value) in PLANNER_SETTINGS.iter().chain(settings) {
                let (Ok(n), Ok(v)) = (CString::new(*name), CString::new(*value)) else {
                    ffi::duckdb_destroy_config(&mut config);
                    return Err(format!("invalid DuckDB setting {name}"));
                };
                if ffi::duckdb_set_config(config, n.as_ptr(), v.as_ptr())
                    != ffi::duckdb_state_DuckDBSuccess
                {
                    ffi::duckdb_destroy_config(&mut config);
                    return Err(format!("invalid DuckDB setting {name} = {value}"));
                }
            }
            let mut raw: ffi::duckdb_database = ptr::null_mut();
            let mut error: *mut std::os::raw::c_char = ptr::null_mut();
            let opened = ffi::duckdb_open_ext(
                c_path.as_ref().map_or(ptr::null(), |p| p.as_ptr()),
                &mut raw,
                config,
                &mut error,
            );
            ffi::duckdb_destroy_config(&mut config);
            if opened != ffi::duckdb_state_DuckDBSuccess {
                let message = if error.is_null() {
                    "unknown error".to_string()
                } else {
                    let m = CStr::from_ptr(error).to_string_lossy().into_owned();
                    ffi::duckdb_free(error.cast());
                    m
                };
                return Err(message);
            }
            let db = Database { raw };
            let mut conn: ffi::duckdb_connection = ptr::null_mut();
            if ffi::duckdb_connect(db.raw, &mut conn) != ffi::duckdb_state_DuckDBSuccess {
                return Err("cannot connect to the database just opened".into());
            }
            let registered = crate::uniq::register(conn)
                .and_then(|()| crate::clock::register(conn))
                .and_then(|()| crate::visit_map::register(conn))
                .and_then(|()| crate::visit_collect::register(conn));
            ffi::duckdb_disconnect(&mut conn);
            registered?;
            Ok(db)
        }
    }

    /// A new connection to this database.
    pub fn connect(&self) -> duckdb::Result<Connection> {
        // SAFETY: `raw` is open until `self` drops; the caller keeps `self` alive while
        // the connection is cloned (see the type's docs).
        unsafe { Connection::open_from_raw(self.raw) }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // SAFETY: opened in `open`, closed once. DuckDB's instance lives on while
        // connections made from it remain.
        unsafe { ffi::duckdb_close(&mut self.raw) }
    }
}

/// Registers the scalar function `name(parameters) -> returns` with `body` in the database
/// `conn` belongs to (DuckDB's system catalog: every connection to the database sees it).
///
/// # Safety
/// `conn` must be an open connection; `body` must read its chunk as `parameters` say and
/// write a `returns` vector of the chunk's size.
pub(crate) unsafe fn register_scalar(
    conn: ffi::duckdb_connection,
    name: &str,
    parameters: &[ffi::DUCKDB_TYPE],
    returns: ffi::DUCKDB_TYPE,
    body: ffi::duckdb_scalar_function_t,
) -> Result<(), String> {
    let c_name = CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: `conn` is open (the caller's promise); every object made is destroyed.
    unsafe {
        let mut function = ffi::duckdb_create_scalar_function();
        ffi::duckdb_scalar_function_set_name(function, c_name.as_ptr());
        for &parameter in parameters {
            let mut t = ffi::duckdb_create_logical_type(parameter);
            ffi::duckdb_scalar_function_add_parameter(function, t);
            ffi::duckdb_destroy_logical_type(&mut t);
        }
        let mut return_type = ffi::duckdb_create_logical_type(returns);
        ffi::duckdb_scalar_function_set_return_type(function, return_type);
        ffi::duckdb_destroy_logical_type(&mut return_type);
        ffi::duckdb_scalar_function_set_function(function, body);
        let state = ffi::duckdb_register_scalar_function(conn, function);
        ffi::duckdb_destroy_scalar_function(&mut function);
        if state == ffi::duckdb_state_DuckDBSuccess {
            Ok(())
        } else {
            Err(format!("cannot register the {name} function"))
        }
    }
}

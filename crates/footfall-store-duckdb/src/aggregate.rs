//! What footfall's aggregate functions (`uniq.rs`, `visit_collect.rs`) share in DuckDB's C
//! API: each group's state is one pointer to a boxed Rust value, null until the group sees
//! a row, freed by [`destroy`]; [`register`] declares the function.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::ptr;

use duckdb::ffi;

/// A group's state: null, or a `Box<T>` turned into a pointer.
pub(crate) type State<T> = *mut T;

/// The callbacks of an aggregate, besides the state's size, start and end (this module's).
pub(crate) struct Callbacks {
    pub update: ffi::duckdb_aggregate_update_t,
    pub combine: ffi::duckdb_aggregate_combine_t,
    pub finalize: ffi::duckdb_aggregate_finalize_t,
    pub destroy: ffi::duckdb_aggregate_destroy_t,
}

unsafe extern "C" fn state_size(_info: ffi::duckdb_function_info) -> ffi::idx_t {
    std::mem::size_of::<State<()>>() as ffi::idx_t
}

unsafe extern "C" fn state_init(
    _info: ffi::duckdb_function_info,
    state: ffi::duckdb_aggregate_state,
) {
    // SAFETY: DuckDB passes `state_size` bytes of state memory, suitably aligned.
    unsafe { (state as *mut State<()>).write(ptr::null_mut()) }
}

/// The value behind a state, made with `Default` on first use.
///
/// # Safety
/// `state` must be state memory initialised by `state_init`, of an aggregate of `T`.
pub(crate) unsafe fn value_of<'a, T: Default>(state: ffi::duckdb_aggregate_state) -> &'a mut T {
    let slot = state as *mut State<T>;
    // SAFETY: the caller's; a non-null slot holds a live `Box<T>` of this state.
    unsafe {
        if (*slot).is_null() {
            *slot = Box::into_raw(Box::default());
        }
        &mut **slot
    }
}

/// Combines each source state into its target: moved when the target is empty, else
/// `merge(target's value, source's value)` kept in the target. Each source is left null,
/// so a value is held once (DuckDB combines each thread's states into new ones at the
/// end of an aggregate and destroys the sources after; a window function's segment trees,
/// which combine one source into several targets, would see it only in the first: these
/// aggregates are not for windows).
///
/// # Safety
/// DuckDB's arguments to an aggregate of `T`'s combine.
pub(crate) unsafe fn combine_moving<T>(
    source: *mut ffi::duckdb_aggregate_state,
    target: *mut ffi::duckdb_aggregate_state,
    count: ffi::idx_t,
    merge: impl Fn(Box<T>, Box<T>) -> Box<T>,
) {
    // SAFETY: `count` initialised source and target states, each null or a live box.
    unsafe {
        for i in 0..count as usize {
            let from_slot = *source.add(i) as *mut State<T>;
            let from = std::mem::replace(&mut *from_slot, ptr::null_mut());
            if from.is_null() {
                continue;
            }
            let into_slot = *target.add(i) as *mut State<T>;
            *into_slot = if (*into_slot).is_null() {
                from
            } else {
                Box::into_raw(merge(Box::from_raw(*into_slot), Box::from_raw(from)))
            };
        }
    }
}

/// Writes `count_of` each state's value (None for a group that saw no row) into a BIGINT
/// result.
///
/// # Safety
/// DuckDB's arguments to an aggregate of `T`'s finalize, with a BIGINT result.
pub(crate) unsafe fn finalize_counts<T>(
    source: *mut ffi::duckdb_aggregate_state,
    result: ffi::duckdb_vector,
    count: ffi::idx_t,
    offset: ffi::idx_t,
    count_of: impl Fn(Option<&mut T>) -> u64,
) {
    // SAFETY: a BIGINT result vector with room for `offset + count` rows; each state
    // null or a live box.
    unsafe {
        let out = ffi::duckdb_vector_get_data(result) as *mut i64;
        for i in 0..count as usize {
            let value = *(*source.add(i) as *const State<T>);
            let n = count_of(value.as_mut());
            *out.add(offset as usize + i) = i64::try_from(n).unwrap_or(i64::MAX);
        }
    }
}

/// Frees the states' values.
///
/// # Safety
/// DuckDB's arguments to an aggregate of `T`'s destructor.
pub(crate) unsafe extern "C" fn destroy<T>(
    states: *mut ffi::duckdb_aggregate_state,
    count: ffi::idx_t,
) {
    // SAFETY: each state holds null or a pointer from `Box::into_raw`, freed once here.
    unsafe {
        for i in 0..count as usize {
            let slot = *states.add(i) as *mut State<T>;
            if !(*slot).is_null() {
                drop(Box::from_raw(*slot));
                *slot = ptr::null_mut();
            }
        }
    }
}

/// Registers the aggregate `name(parameters) -> returns` in the database `conn` belongs
/// to (DuckDB's system catalog: every connection to the database sees it).
///
/// # Safety
/// `conn` must be an open connection; `callbacks` must treat states as this module does.
pub(crate) unsafe fn register(
    conn: ffi::duckdb_connection,
    name: &str,
    parameters: &[ffi::DUCKDB_TYPE],
    returns: ffi::DUCKDB_TYPE,
    callbacks: Callbacks,
) -> Result<(), String> {
    let c_name = CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: `conn` is open (the caller's promise); every object made is destroyed.
    unsafe {
        let mut function = ffi::duckdb_create_aggregate_function();
        ffi::duckdb_aggregate_function_set_name(function, c_name.as_ptr());
        for &parameter in parameters {
            let mut t = ffi::duckdb_create_logical_type(parameter);
            ffi::duckdb_aggregate_function_add_parameter(function, t);
            ffi::duckdb_destroy_logical_type(&mut t);
        }
        let mut return_type = ffi::duckdb_create_logical_type(returns);
        ffi::duckdb_aggregate_function_set_return_type(function, return_type);
        ffi::duckdb_destroy_logical_type(&mut return_type);
        ffi::duckdb_aggregate_function_set_functions(
            function,
            Some(state_size),
            Some(state_init),
            callbacks.update,
            callbacks.combine,
            callbacks.finalize,
        );
        ffi::duckdb_aggregate_function_set_destructor(function, callbacks.destroy);
        let state = ffi::duckdb_register_aggregate_function(conn, function);
        ffi::duckdb_destroy_aggregate_function(&mut function);
        if state == ffi::duckdb_state_DuckDBSuccess {
            Ok(())
        } else {
            Err(format!("cannot register the {name} aggregate"))
        }
    }
}

package thumbprint

// OnWait makes r call f, under its scheduler's lock (f must not call r),
// each time a request for a connection to host has to wait: for room, or
// for a connection busy with another request.
func OnWait(r *Run, f func(host string)) { r.sched.queued = f }

/**
 * Any UUID in its canonical text form, either case: every darkroom id (jobs, batches, keys,
 * provider checks). Checked before an id reaches the database, which would refuse another form.
 */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

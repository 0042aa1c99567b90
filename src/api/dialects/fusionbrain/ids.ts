/**
 * Fusion Brain's generation uuids are version 4, and its official SDK refuses any other version;
 * darkroom's job ids are UUIDv7. The two share the variant bits, so a job id is shown with its version
 * digit set to 4 and read back by setting it to 7 again: reversible, with no table to keep.
 */
const VERSION_DIGIT = 14;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const withVersion = (id: string, version: string) => id.slice(0, VERSION_DIGIT) + version + id.slice(VERSION_DIGIT + 1);

export function toGenerationUuid(jobId: string): string {
  return jobId[VERSION_DIGIT] === '7' ? withVersion(jobId, '4') : jobId;
}

/** The job id behind a generation uuid, or undefined when the text is not one this dialect hands out. */
export function toJobId(uuid: string): string | undefined {
  const lower = uuid.toLowerCase();
  if (!UUID.test(lower) || lower[VERSION_DIGIT] !== '4') return undefined;
  return withVersion(lower, '7');
}

import type { JobProgress } from '../client/index.ts';

/** Where a running job stands, in words: status, stage, the provider's queue position, percent. */
function describeProgress(progress: JobProgress): string {
  const details: string[] = [];
  if (progress.stage) details.push(progress.stage.replaceAll('_', ' '));
  if (progress.queuePosition !== null) details.push(`queue position ${progress.queuePosition}`);
  if (progress.progress !== null && progress.status === 'running') details.push(`${Math.round(progress.progress * 100)}%`);
  const head = `job ${progress.id} ${progress.status}`;
  return details.length > 0 ? `${head}: ${details.join(', ')}` : head;
}

/**
 * How `generate` shows a job on stderr. On a terminal, a spinner whose text follows the job; on a
 * pipe or a file (a script, CI, a log), no spinner and no escape codes: one line when the job is
 * created and one when the command ends, so a log still says which job it was and how it ended.
 */
export interface ProgressDisplay {
  /** The job was created. */
  start(progress: JobProgress): void;
  /** The job moved on (status, stage, queue position or percent). */
  update(progress: JobProgress): void;
  /** The command is busy with something of its own (saving images, cancelling). */
  working(text: string): void;
  /** The last word: succeeded, or not. */
  finish(succeeded: boolean, text: string): void;
  /** Clears a spinner that is still turning (an error is about to be reported); its timer would keep the process alive. */
  stop(): void;
}

export async function makeProgressDisplay(stream: NodeJS.WriteStream): Promise<ProgressDisplay> {
  // A terminal without a width (a pty nobody sized, like `docker run -t` at first) is no place for a
  // spinner: ora measures its lines by the width, and with none it never stops erasing them.
  if (!stream.isTTY || !(stream.columns > 0)) {
    return {
      start: (progress) => stream.write(`${describeProgress(progress)}\n`),
      update: () => {},
      working: () => {},
      finish: (_succeeded, text) => stream.write(`${text}\n`),
      stop: () => {},
    };
  }
  // Imported here: every other command (and the server, which shares the CLI's entry) does without it.
  const { default: ora } = await import('ora');
  // discardStdin would put the terminal in raw mode, where Ctrl-C is a keystroke instead of SIGINT.
  const spinner = ora({ stream, isEnabled: true, discardStdin: false });
  return {
    start: (progress) => spinner.start(describeProgress(progress)),
    update: (progress) => {
      spinner.text = describeProgress(progress);
    },
    working: (text) => {
      spinner.text = text;
    },
    finish: (succeeded, text) => {
      if (succeeded) spinner.succeed(text);
      else spinner.fail(text);
    },
    stop: () => {
      if (spinner.isSpinning) spinner.stop();
    },
  };
}

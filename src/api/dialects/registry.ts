import type { Dialect } from '../http/dialect.ts';
import { civitaiDialect } from './civitai/index.ts';
import { fusionbrainDialect } from './fusionbrain/index.ts';
import { imagesDialect } from './images/index.ts';
import { nativeDialect } from './native/index.ts';
import { openaiDialect } from './openai/index.ts';
import { runpodDialect } from './runpod/index.ts';
import { tasksDialect } from './tasks/index.ts';
import { a1111Dialect } from './a1111/index.ts';
import { comfyuiDialect } from './comfyui/index.ts';

/** Every API darkroom serves. Adding a dialect is its folder and one line here. */
export const DIALECTS: readonly Dialect[] = [nativeDialect, civitaiDialect, fusionbrainDialect, runpodDialect, tasksDialect, imagesDialect, openaiDialect, a1111Dialect, comfyuiDialect];

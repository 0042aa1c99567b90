import type { Problem } from 'darkroom/client';
import type { RefObject } from 'preact';
import type { ProviderStatus } from '../api.ts';
import { outputSizeFor, presetOf, randomSeed, SIZE_PRESETS, type FormValues } from '../form.ts';
import { ImageInputs, ROLE_NAMES, type PickedImages, type PickedRole } from './image-inputs.tsx';

/** Why the last submission was refused: the API's problem details. */
export type FormProblem = Pick<Problem, 'detail' | 'errors'>;

interface PromptFormProps {
  values: FormValues;
  onChange(values: FormValues): void;
  onSubmit(): void;
  busy: boolean;
  providers: ProviderStatus[];
  problem: FormProblem | undefined;
  advancedOpen: boolean;
  onAdvancedToggle(open: boolean): void;
  picked: PickedImages;
  /** An input image is still being uploaded: nothing can be sent yet. */
  uploading: boolean;
  onPick(role: PickedRole, file: File): void;
  onClear(role: PickedRole): void;
  imagesOpen: boolean;
  onImagesToggle(open: boolean): void;
  promptRef: RefObject<HTMLTextAreaElement | null>;
}

const FIELD_LABELS: Record<string, string> = {
  prompt: 'Prompt',
  prompts: 'Prompt',
  negativePrompt: 'Negative',
  width: 'Width',
  height: 'Height',
  steps: 'Steps',
  cfgScale: 'CFG scale',
  seed: 'Seed',
  numImages: 'Number of images',
  provider: 'Provider',
  style: 'Style',
  images: 'Input images',
  strength: 'Strength',
};

/** The form sends the init image first, then the mask: `images.N` is by that order. */
const IMAGE_LABELS = [ROLE_NAMES.init, ROLE_NAMES.mask];

/** The API's field path as the form calls it: `prompts.2` is line 3 of the prompt, `images.1` the mask. */
function fieldLabel(field: string): string {
  const [name = field, index] = field.split('.');
  if (name === 'images' && index !== undefined) return IMAGE_LABELS[Number(index)] ?? FIELD_LABELS.images ?? field;
  const label = FIELD_LABELS[name] ?? field;
  return name === 'prompts' && index !== undefined ? `${label}, line ${Number(index) + 1}` : label;
}

/** The form field an API error is about (`prompts.N` is the prompt box, `images.N…` the image pickers). */
const fieldOf = (field: string) => (field.startsWith('prompts') ? 'prompt' : field.startsWith('images') ? 'images' : field);

/** Whether a drag carries files (and not text being moved within the page). */
const carriesFiles = (event: DragEvent): boolean => event.dataTransfer?.types.includes('Files') ?? false;

const ERRORS_ID = 'form-errors';

/** The shortcut as the keyboard at hand names it. */
const SUBMIT_SHORTCUT = /Mac|iPhone|iPad/.test(navigator.userAgent) ? '⌘+Enter' : 'Ctrl+Enter';

export function PromptForm(props: PromptFormProps) {
  const { values, onChange, problem, providers } = props;
  const invalid = new Set((problem?.errors ?? []).map((error) => fieldOf(error.field)));
  const set = (patch: Partial<FormValues>) => onChange({ ...values, ...patch });
  // Every input that the API named gets aria-invalid and points at the error list.
  const field = (name: keyof FormValues) => ({
    id: `field-${name}`,
    'aria-invalid': invalid.has(name) ? ('true' as const) : undefined,
    'aria-describedby': invalid.has(name) ? ERRORS_ID : undefined,
  });
  const text = (name: keyof FormValues) => ({
    ...field(name),
    value: values[name] as string,
    onInput: (event: Event) => set({ [name]: (event.currentTarget as HTMLInputElement).value }),
  });
  const preset = presetOf(values);

  return (
    <form
      class="prompt-form"
      noValidate
      aria-busy={props.busy}
      onSubmit={(event) => {
        event.preventDefault();
        props.onSubmit();
      }}
      // An image dropped anywhere on the form is the init image (the mask has its own drop zone).
      onDragOver={(event) => {
        if (carriesFiles(event)) event.preventDefault();
      }}
      onDrop={(event) => {
        const file = event.dataTransfer?.files[0];
        if (!file) return;
        event.preventDefault();
        props.onImagesToggle(true);
        props.onPick('init', file);
      }}
    >
      <label for="field-prompt">Prompt</label>
      <textarea
        {...text('prompt')}
        ref={props.promptRef}
        rows={values.batch ? 6 : 4}
        aria-describedby={['prompt-hint', invalid.has('prompt') ? ERRORS_ID : ''].join(' ').trim()}
        placeholder={values.batch ? 'a lighthouse at dusk\na red fox in snow\na bowl of ramen' : 'a lighthouse at dusk, oil painting'}
        onKeyDown={(event) => {
          // Ctrl+Enter (Cmd+Enter on a Mac) sends from the text box, where Enter is a new line.
          if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
            event.preventDefault();
            event.currentTarget.form?.requestSubmit();
          }
        }}
      />
      <p id="prompt-hint" class="hint">
        {values.batch ? 'Batch mode: each line is a job of its own. ' : ''}
        {SUBMIT_SHORTCUT} generates.
      </p>

      <div class="form-row">
        <label class="check">
          <input type="checkbox" checked={values.batch} onChange={(event) => set({ batch: event.currentTarget.checked })} />
          Batch mode: one job per line
        </label>
        <button type="submit" class="primary" disabled={props.busy || props.uploading}>
          Generate
        </button>
      </div>

      {problem ? (
        <div id={ERRORS_ID} class="problem" role="alert">
          {problem.errors && problem.errors.length > 0 ? (
            <>
              <p>The request was refused:</p>
              <ul>
                {problem.errors.map((error) => (
                  <li key={`${error.field}:${error.message}`}>
                    <strong>{fieldLabel(error.field)}</strong> {error.message}
                  </li>
                ))}
              </ul>
            </>
          ) : (
            <p>{problem.detail}</p>
          )}
        </div>
      ) : null}

      <ImageInputs
        picked={props.picked}
        strength={values.strength}
        onStrength={(strength) => set({ strength })}
        onPick={props.onPick}
        onClear={props.onClear}
        onUseSize={(width, height) => {
          set(outputSizeFor(width, height));
          // Where the size it set can be seen.
          props.onAdvancedToggle(true);
        }}
        open={props.imagesOpen}
        onToggle={props.onImagesToggle}
        invalid={invalid}
        errorsId={ERRORS_ID}
      />

      <details class="advanced" open={props.advancedOpen} onToggle={(event) => props.onAdvancedToggle(event.currentTarget.open)}>
        <summary>Advanced options</summary>
        <div class="advanced-grid">
          <div class="wide">
            {/* Not named "Negative prompt": the prompt box must be the only field whose name holds "Prompt". */}
            <label for="field-negativePrompt">Negative</label>
            <textarea
              {...text('negativePrompt')}
              rows={2}
              placeholder="blurry, low quality"
              aria-describedby={['negative-hint', invalid.has('negativePrompt') ? ERRORS_ID : ''].join(' ').trim()}
            />
            <p id="negative-hint" class="hint">
              What the image should not show (the negative prompt).
            </p>
          </div>
          <div class="wide">
            <label for="field-size">Size</label>
            <select
              id="field-size"
              value={preset ? `${preset.width}x${preset.height}` : 'custom'}
              onChange={(event) => {
                const [width, height] = event.currentTarget.value.split('x');
                if (width && height) set({ width, height });
              }}
            >
              {SIZE_PRESETS.map((option) => (
                <option key={option.label} value={`${option.width}x${option.height}`}>
                  {option.label} ({option.width}×{option.height})
                </option>
              ))}
              <option value="custom">Custom</option>
            </select>
          </div>
          <div>
            <label for="field-width">Width</label>
            <input {...text('width')} type="number" inputMode="numeric" min={64} max={2048} step={8} />
          </div>
          <div>
            <label for="field-height">Height</label>
            <input {...text('height')} type="number" inputMode="numeric" min={64} max={2048} step={8} />
          </div>
          <div>
            <label for="field-steps">Steps</label>
            <input {...text('steps')} type="number" inputMode="numeric" min={1} max={150} placeholder="default" />
          </div>
          <div>
            <label for="field-cfgScale">CFG scale</label>
            <input {...text('cfgScale')} type="number" inputMode="decimal" min={1} max={30} step={0.5} placeholder="default" />
          </div>
          <div>
            <label for="field-seed">Seed</label>
            <div class="with-button">
              <input {...text('seed')} type="number" inputMode="numeric" min={0} max={4294967295} placeholder="random" />
              {/* Named without "seed", so that the seed box is the only field whose name holds it. */}
              <button type="button" class="icon" aria-label="Random value (dice)" title="Roll a random seed" onClick={() => set({ seed: String(randomSeed()) })}>
                <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
                  <rect x="3" y="3" width="18" height="18" rx="4" fill="none" stroke="currentColor" stroke-width="2" />
                  <circle cx="8" cy="8" r="1.6" fill="currentColor" />
                  <circle cx="16" cy="8" r="1.6" fill="currentColor" />
                  <circle cx="12" cy="12" r="1.6" fill="currentColor" />
                  <circle cx="8" cy="16" r="1.6" fill="currentColor" />
                  <circle cx="16" cy="16" r="1.6" fill="currentColor" />
                </svg>
              </button>
            </div>
          </div>
          <div>
            <label for="field-numImages">Number of images</label>
            <input {...text('numImages')} type="number" inputMode="numeric" min={1} max={10} />
          </div>
          <div>
            <label for="field-provider">Provider</label>
            <select {...text('provider')}>
              <option value="">Default{providers.some((provider) => provider.default) ? ` (${providers.find((provider) => provider.default)?.name})` : ''}</option>
              {providers.map((provider) => (
                <option key={provider.name} value={provider.name}>
                  {provider.name}
                  {provider.healthy ? '' : ' (unhealthy)'}
                </option>
              ))}
              {/* A reused job's provider that is no longer configured: shown rather than silently dropped. */}
              {values.provider && !providers.some((provider) => provider.name === values.provider) ? <option value={values.provider}>{values.provider}</option> : null}
            </select>
          </div>
          <div>
            <label for="field-style">Style</label>
            <input {...text('style')} type="text" placeholder="none" />
          </div>
        </div>
      </details>
    </form>
  );
}

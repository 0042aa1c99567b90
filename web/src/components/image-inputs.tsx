import type { InputSource, JobInput, Upload } from 'darkroom/client';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { describeError, isUnauthorized, type Api } from '../api.ts';

/** The roles a person picks a file for in the form (references have no picker yet). */
export type PickedRole = 'init' | 'mask';

/** An image picked in the form: previewed at once, uploaded to darkroom in the background. */
export interface PickedImage {
  name: string;
  /** An object URL of the picked file, for the preview. */
  previewUrl: string;
  /** The server's answer once uploaded: the id a job refers to, and the size and type it found. */
  upload?: Upload;
  /** Why the upload failed. */
  error?: string;
}

export type PickedImages = Partial<Record<PickedRole, PickedImage>>;

export const ROLE_NAMES: Record<InputSource['role'], string> = { init: 'Init image', mask: 'Mask', reference: 'Reference' };

/** What the picked images are to the form: ready to send, still uploading, or refused by the server. */
export type PickedState = { state: 'ready'; sources: InputSource[] } | { state: 'uploading' } | { state: 'failed'; role: PickedRole; error: string };

export function pickedState(picked: PickedImages): PickedState {
  const sources: InputSource[] = [];
  // Init first, then the mask: the order the request lists them in (and the API's errors count by).
  for (const role of ['init', 'mask'] as const) {
    const image = picked[role];
    if (!image) continue;
    if (image.error !== undefined) return { state: 'failed', role, error: image.error };
    if (!image.upload) return { state: 'uploading' };
    sources.push({ role, uploadId: image.upload.id });
  }
  return { state: 'ready', sources };
}

/**
 * The form's input images. Each is uploaded (`POST /api/v1/uploads`) as soon as it is picked, so
 * that the server's verdict (not an image, too large) and the size it read are shown before
 * Generate is pressed; a job then refers to it by its upload id. Removing the init image removes
 * the mask too: a mask needs an init image.
 */
export function useImageInputs(api: Api) {
  const [picked, setPicked] = useState<PickedImages>({});
  const current = useRef(picked);
  current.current = picked;
  // Bumped whenever a role's image is replaced or removed, so the answer of an older upload is dropped.
  const generation = useRef<Record<PickedRole, number>>({ init: 0, mask: 0 });

  const release = (roles: PickedRole[]) => {
    for (const role of roles) {
      generation.current[role] += 1;
      const image = current.current[role];
      if (image) URL.revokeObjectURL(image.previewUrl);
    }
  };

  const clear = useCallback((role: PickedRole) => {
    const roles: PickedRole[] = role === 'init' ? ['init', 'mask'] : [role];
    release(roles);
    setPicked((previous) => {
      const next = { ...previous };
      for (const gone of roles) delete next[gone];
      return next;
    });
  }, []);

  const pick = useCallback(
    async (role: PickedRole, file: File) => {
      release([role]);
      const mine = generation.current[role];
      const image: PickedImage = { name: file.name, previewUrl: URL.createObjectURL(file) };
      setPicked((previous) => ({ ...previous, [role]: image }));
      const settle = (patch: Partial<PickedImage>) => {
        if (mine === generation.current[role]) setPicked((previous) => ({ ...previous, [role]: { ...image, ...patch } }));
      };
      try {
        settle({ upload: await api.client.uploads.create(file) });
      } catch (error) {
        settle({ error: isUnauthorized(error) ? 'darkroom needs an API key for uploads: save one in Settings, then pick the image again.' : describeError(error) });
      }
    },
    [api],
  );

  /**
   * Picks a finished job's init image and mask again (for "Reuse these settings"): fetched from
   * their signed links and uploaded anew. Resolves with false when one could not be fetched (a
   * link that expired, storage that refuses the page's origin); the form is then left without.
   */
  const reuse = useCallback(
    async (inputs: JobInput[]): Promise<boolean> => {
      clear('init');
      for (const role of ['init', 'mask'] as const) {
        const input = inputs.find((candidate) => candidate.role === role);
        if (!input) continue;
        try {
          const response = await fetch(input.url);
          if (!response.ok) throw new Error(`HTTP ${response.status}`);
          const blob = await response.blob();
          void pick(role, new File([blob], `${role}.${input.contentType.split('/')[1] ?? 'png'}`, { type: input.contentType }));
        } catch {
          clear('init');
          return false;
        }
      }
      return true;
    },
    [clear, pick],
  );

  // The previews' object URLs live as long as the page's form does.
  useEffect(() => () => release(['init', 'mask']), []);

  return { picked, pick, clear, reuse };
}

interface ImageSlotProps {
  role: PickedRole;
  image: PickedImage | undefined;
  hint: string;
  invalid: boolean;
  describedBy: string | undefined;
  onPick(role: PickedRole, file: File): void;
  onClear(role: PickedRole): void;
  /** Offered once the image's size is known: make the output that size. */
  onUseSize?(width: number, height: number): void;
}

/** The first file of a drag, if the drag carries files at all. */
const draggedFile = (event: DragEvent): File | undefined => event.dataTransfer?.files[0];
const carriesFiles = (event: DragEvent): boolean => event.dataTransfer?.types.includes('Files') ?? false;

/** One picker: a drop zone holding a file input, then the preview, the size the server read, and Remove. */
function ImageSlot({ role, image, hint, invalid, describedBy, onPick, onClear, onUseSize }: ImageSlotProps) {
  const [over, setOver] = useState(false);
  const id = `field-${role}-image`;
  const hintId = `${id}-hint`;
  const label = ROLE_NAMES[role];
  const upload = image?.upload;
  return (
    <div
      class={`drop-zone${over ? ' over' : ''}`}
      data-role={role}
      onDragOver={(event) => {
        if (!carriesFiles(event)) return;
        event.preventDefault();
        event.stopPropagation();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(event) => {
        event.preventDefault();
        event.stopPropagation();
        setOver(false);
        const file = draggedFile(event);
        if (file) onPick(role, file);
      }}
    >
      <label for={id}>{label}</label>
      <input
        id={id}
        type="file"
        accept="image/png,image/jpeg,image/webp"
        aria-invalid={invalid ? 'true' : undefined}
        aria-describedby={[hintId, describedBy ?? ''].join(' ').trim()}
        onChange={(event) => {
          const input = event.currentTarget;
          const file = input.files?.[0];
          if (file) onPick(role, file);
          // Picking the same file again after Remove must fire a change too.
          input.value = '';
        }}
      />
      <p id={hintId} class="hint">
        {hint}
      </p>
      {image ? (
        <div class="picked">
          <img src={image.previewUrl} alt={`${label} preview`} />
          <div class="picked-facts">
            <p class="picked-name">{image.name}</p>
            {upload ? (
              <p class="picked-size">
                {upload.width}×{upload.height} px
              </p>
            ) : image.error !== undefined ? (
              <p class="picked-error" role="alert">
                Not uploaded: {image.error}
              </p>
            ) : (
              <p class="muted">Uploading…</p>
            )}
            <div class="picked-actions">
              {upload && onUseSize ? (
                <button type="button" onClick={() => onUseSize(upload.width, upload.height)}>
                  Use its size
                </button>
              ) : null}
              <button type="button" aria-label={`Remove the ${label.toLowerCase()}`} onClick={() => onClear(role)}>
                Remove
              </button>
            </div>
          </div>
        </div>
      ) : null}
    </div>
  );
}

interface ImageInputsProps {
  picked: PickedImages;
  strength: string;
  onStrength(strength: string): void;
  onPick(role: PickedRole, file: File): void;
  onClear(role: PickedRole): void;
  onUseSize(width: number, height: number): void;
  open: boolean;
  onToggle(open: boolean): void;
  /** The API named these request fields as wrong (`images`, `strength`). */
  invalid: ReadonlySet<string>;
  errorsId: string;
}

/** "Start from an image": the init image with its strength, and a mask once there is an init image. */
export function ImageInputs(props: ImageInputsProps) {
  const { picked, invalid, errorsId } = props;
  const describedBy = (field: string) => (invalid.has(field) ? errorsId : undefined);
  return (
    <details class="image-inputs" open={props.open} onToggle={(event) => props.onToggle(event.currentTarget.open)}>
      <summary>Start from an image{picked.init ? ` (${picked.mask ? 'init image and mask' : 'init image'})` : ''}</summary>
      <ImageSlot
        role="init"
        image={picked.init}
        hint="PNG, JPEG or WebP, picked or dropped here. The job changes it as the prompt says."
        invalid={invalid.has('images')}
        describedBy={describedBy('images')}
        onPick={props.onPick}
        onClear={props.onClear}
        onUseSize={props.onUseSize}
      />
      {picked.init ? (
        <>
          <div class="strength">
            <label for="field-strength">Strength</label>
            <div class="with-output">
              <input
                id="field-strength"
                type="range"
                min={0}
                max={1}
                step={0.05}
                value={props.strength}
                aria-invalid={invalid.has('strength') ? 'true' : undefined}
                aria-describedby={['strength-hint', describedBy('strength') ?? ''].join(' ').trim()}
                onInput={(event) => props.onStrength(event.currentTarget.value)}
              />
              <output for="field-strength">{Number(props.strength).toFixed(2)}</output>
            </div>
            <p id="strength-hint" class="hint">
              How much the image may change: 0 keeps it, 1 ignores it.
            </p>
          </div>
          <ImageSlot
            role="mask"
            image={picked.mask}
            hint="Optional, the init image's size: white areas are painted anew, black ones keep the init image."
            invalid={invalid.has('images')}
            describedBy={describedBy('images')}
            onPick={props.onPick}
            onClear={props.onClear}
          />
        </>
      ) : null}
    </details>
  );
}

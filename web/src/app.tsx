import { DarkroomApiError, type Job, type JobStreamEvent } from 'darkroom/client';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { describeError, isUnauthorized, makeApi, type ProviderStatus } from './api.ts';
import { Gallery, useGallery } from './components/gallery.tsx';
import { pickedState, ROLE_NAMES, useImageInputs } from './components/image-inputs.tsx';
import { JobCard, type CardState } from './components/job-card.tsx';
import { Lightbox, type LightboxTarget } from './components/lightbox.tsx';
import { PromptForm, type FormProblem } from './components/prompt-form.tsx';
import { Settings, ThemeToggle } from './components/settings.tsx';
import { StatusBar, useQueueStats } from './components/status-bar.tsx';
import { isActive } from './format.ts';
import { DEFAULT_VALUES, hasAdvancedValues, toBatchInput, toJobInput, valuesFromJob, type FormValues } from './form.ts';
import { followJobEvents, type LiveState } from './live.ts';
import { loadApiKey, saveApiKey } from './preferences.ts';

/** Events of jobs without a card yet are kept this long (by count): a card created a moment later picks them up. */
const EARLY_EVENTS_KEPT = 500;
/** Active jobs listed at load (and after each reconnection) as cards. */
const ACTIVE_LISTED = 50;
/** An image link expiring sooner than this is renewed before the lightbox shows it. */
const LINK_MARGIN_MS = 60_000;

type LivePatch = Partial<Pick<Job, 'status' | 'stage' | 'progress' | 'queuePosition' | 'error'>>;

const byNewest = (a: CardState, b: CardState) => (a.job.id < b.job.id ? 1 : a.job.id > b.job.id ? -1 : 0);

/** What one event changes in a job. */
function patchOf(event: JobStreamEvent): LivePatch {
  const patch: LivePatch = { status: event.status, stage: event.stage };
  if (event.type === 'progress') Object.assign(patch, { progress: event.progress, queuePosition: event.queuePosition });
  if (event.type === 'status') patch.error = event.error;
  return patch;
}

/**
 * A newer look at a job. A finished job stays finished: a snapshot that was taken before it ended
 * can arrive after the event that ended it, and must not bring it back to life.
 */
function advance(job: Job, next: Job | LivePatch): Job {
  if (!isActive(job.status) && next.status !== undefined && isActive(next.status)) return job;
  return { ...job, ...next };
}

export function App({ baseUrl }: { baseUrl: string }) {
  const [apiKey, setApiKey] = useState(loadApiKey);
  const keyNow = useRef(apiKey);
  keyNow.current = apiKey;
  const [needsKey, setNeedsKey] = useState(false);
  const api = useMemo(() => makeApi({ baseUrl, apiKey: () => keyNow.current, onUnauthorized: () => setNeedsKey(true) }), [baseUrl]);
  // Bumped when a key is saved: everything that loads from the API loads again.
  const [reload, setReload] = useState(0);

  const [settingsOpen, setSettingsOpen] = useState(false);
  const keyInput = useRef<HTMLInputElement>(null);
  const promptInput = useRef<HTMLTextAreaElement>(null);

  const [providers, setProviders] = useState<ProviderStatus[]>([]);
  const [values, setValues] = useState<FormValues>(DEFAULT_VALUES);
  const [advancedOpen, setAdvancedOpen] = useState(false);
  const [imagesOpen, setImagesOpen] = useState(false);
  const images = useImageInputs(api);
  const picked = pickedState(images.picked);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<FormProblem>();

  const [cards, setCards] = useState<CardState[]>([]);
  const cardsNow = useRef(cards);
  cardsNow.current = cards;
  const cardIds = useRef(new Set<string>());
  const early = useRef(new Map<string, LivePatch>());
  const [live, setLive] = useState<LiveState>('connecting');
  const [now, setNow] = useState(Date.now);

  const [lightbox, setLightbox] = useState<LightboxTarget>();
  const opener = useRef<HTMLElement | null>(null);

  const gallery = useGallery(api, reload);
  const { stats, refreshSoon } = useQueueStats(api, reload);

  const updateCard = useCallback((id: string, change: (card: CardState) => CardState) => {
    setCards((previous) => previous.map((card) => (card.job.id === id ? change(card) : card)));
  }, []);

  /** Reads a job again: its final state with fresh image links. A succeeded one joins the gallery. */
  const refreshJob = useCallback(
    async (id: string) => {
      try {
        const job = await api.client.get(id);
        updateCard(id, (card) => ({ ...card, job: advance(card.job, job) }));
        if (job.status === 'succeeded') gallery.add(job);
      } catch (error) {
        if (!isUnauthorized(error)) updateCard(id, (card) => ({ ...card, notice: `Could not read the job again: ${describeError(error)}` }));
      }
    },
    [api, updateCard, gallery.add],
  );

  /** Cards for new jobs, with whatever their events already said. */
  const addCards = useCallback(
    (jobs: Job[]) => {
      const fresh = jobs.filter((job) => !cardIds.current.has(job.id));
      for (const job of fresh) cardIds.current.add(job.id);
      const added = fresh.map((job): CardState => {
        const patch = early.current.get(job.id);
        early.current.delete(job.id);
        return { job: patch ? advance(job, patch) : job, cancelling: false };
      });
      setCards((previous) => [...added, ...previous].sort(byNewest));
      // Those that ended before their card existed: the event that ended them found no card to fill.
      for (const card of added) if (!isActive(card.job.status) && card.job.completedAt === null) void refreshJob(card.job.id);
    },
    [refreshJob],
  );

  const onEvent = useCallback(
    (event: JobStreamEvent) => {
      if (event.type === 'status') refreshSoon();
      const terminal = event.type === 'status' && !isActive(event.status);
      if (cardIds.current.has(event.jobId)) {
        updateCard(event.jobId, (card) => ({ ...card, job: advance(card.job, patchOf(event)) }));
        if (terminal) void refreshJob(event.jobId);
        return;
      }
      const kept = early.current;
      kept.set(event.jobId, { ...kept.get(event.jobId), ...patchOf(event) });
      if (kept.size > EARLY_EVENTS_KEPT) kept.delete(kept.keys().next().value as string);
      // Jobs made elsewhere (another tab, the API) get no card, but their images join the gallery.
      if (terminal && event.status === 'succeeded') {
        api.client.get(event.jobId).then(gallery.add, () => undefined);
      }
    },
    [api, updateCard, refreshJob, refreshSoon, gallery.add],
  );

  /**
   * Once a stream is open, nothing from then on is missed; what happened before is read: the jobs
   * still running get cards, and cards that ended while no stream was open are read again.
   */
  const resync = useCallback(async () => {
    try {
      const [queued, running] = await Promise.all([
        api.client.list({ status: 'queued', limit: ACTIVE_LISTED }),
        api.client.list({ status: 'running', limit: ACTIVE_LISTED }),
      ]);
      const activeJobs = [...queued.items, ...running.items];
      addCards(activeJobs);
      const stillActive = new Set(activeJobs.map((job) => job.id));
      for (const card of cardsNow.current) if (isActive(card.job.status) && !stillActive.has(card.job.id)) void refreshJob(card.job.id);
    } catch {
      // The cards stay as they are; the next reconnection tries again.
    }
  }, [api, addCards, refreshJob]);

  // One stream for the page's life, and a new one when a key is saved (the handlers are stable).
  useEffect(
    () =>
      followJobEvents(api, {
        onEvent,
        onState: (state) => {
          setLive(state);
          if (state === 'live') void resync();
        },
      }),
    [api, reload, onEvent, resync],
  );

  useEffect(() => {
    api.providers().then(setProviders, () => undefined);
  }, [api, reload]);

  // One clock for every card's elapsed time, ticking only while a job is active.
  const anyActive = cards.some((card) => isActive(card.job.status));
  useEffect(() => {
    if (!anyActive) return;
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [anyActive]);

  const submit = useCallback(async () => {
    setProblem(undefined);
    if (picked.state === 'uploading') return;
    if (picked.state === 'failed') {
      setProblem({ detail: `The ${ROLE_NAMES[picked.role].toLowerCase()} was not uploaded (${picked.error}). Pick another file, or remove it.` });
      setImagesOpen(true);
      return;
    }
    setBusy(true);
    try {
      if (values.batch) addCards((await api.client.batch(toBatchInput(values, picked.sources))).jobs);
      else addCards([await api.client.create(toJobInput(values, picked.sources))]);
    } catch (error) {
      if (isUnauthorized(error)) return;
      const refused: FormProblem = error instanceof DarkroomApiError ? error.problem : { detail: describeError(error) };
      setProblem(refused);
      // An error about an option is only useful if that option can be seen.
      const fields = refused.errors?.map((item) => item.field.replace(/^jobs\.\d+\./, '')) ?? [];
      if (fields.some((field) => /^(images|strength)\b/.test(field))) setImagesOpen(true);
      if (fields.some((field) => !/^(prompts?|images|strength)\b/.test(field))) setAdvancedOpen(true);
    } finally {
      setBusy(false);
    }
  }, [api, values, addCards, picked]);

  const cancel = useCallback(
    async (id: string) => {
      updateCard(id, (card) => ({ ...card, cancelling: true, notice: undefined }));
      try {
        const job = await api.client.cancel(id);
        updateCard(id, (card) => ({ ...card, cancelling: false, job: advance(card.job, job) }));
      } catch (error) {
        const notice = error instanceof DarkroomApiError && error.status === 409 ? 'It had already finished.' : `Could not cancel: ${describeError(error)}`;
        updateCard(id, (card) => ({ ...card, cancelling: false, notice }));
        void refreshJob(id);
      }
    },
    [api, updateCard, refreshJob],
  );

  // Links are signed for SIGNED_URL_TTL; a page left open longer asks for fresh ones before showing the original.
  const openImage = useCallback(
    async (job: Job, index: number, from: HTMLElement) => {
      opener.current = from;
      const expiresAt = job.images.find((image) => image.index === index)?.expiresAt;
      if (expiresAt === undefined || Date.parse(expiresAt) - Date.now() > LINK_MARGIN_MS) {
        setLightbox({ job, index });
        return;
      }
      const fresh = await api.client.get(job.id).catch(() => job);
      if (fresh.status === 'succeeded') gallery.add(fresh);
      setLightbox({ job: fresh, index });
    },
    [api, gallery.add],
  );

  const closeLightbox = useCallback(() => {
    setLightbox(undefined);
    opener.current?.focus();
    opener.current = null;
  }, []);

  const reuse = useCallback(
    (job: Job, index: number) => {
      const image = job.images.find((candidate) => candidate.index === index);
      const next = valuesFromJob(job.request, image?.seed ?? null);
      setValues(next);
      setProblem(undefined);
      setAdvancedOpen(hasAdvancedValues(next));
      const inputs = job.inputs ?? [];
      setImagesOpen(inputs.length > 0);
      void images.reuse(inputs).then((reused) => {
        if (!reused) setProblem({ detail: "The job's input images could not be loaded again. Pick them to start from them." });
      });
      // The dialog closes next and gives focus back to whatever `opener` holds: the prompt, to go on from there.
      opener.current = promptInput.current;
    },
    [images.reuse],
  );

  // A link that stopped working has most likely expired: read the job again for fresh ones, once.
  const refreshed = useRef(new Set<string>());
  const onBroken = useCallback(
    (job: Job) => {
      if (refreshed.current.has(job.id)) return;
      refreshed.current.add(job.id);
      api.client.get(job.id).then(gallery.add, () => undefined);
    },
    [api, gallery.add],
  );

  const saveKey = useCallback((key: string | undefined) => {
    saveApiKey(key);
    keyNow.current = key;
    setApiKey(key);
    setNeedsKey(false);
    setReload((count) => count + 1);
  }, []);

  // Told of a 401: the settings open, then (once open, so that it can) the key field takes focus.
  useEffect(() => {
    if (needsKey) setSettingsOpen(true);
  }, [needsKey]);
  useEffect(() => {
    if (needsKey && settingsOpen) keyInput.current?.focus();
  }, [needsKey, settingsOpen]);

  const finished = cards.filter((card) => !isActive(card.job.status)).length;
  return (
    <>
      <header class="top">
        <h1>darkroom</h1>
        <StatusBar stats={stats} live={live} />
        <div class="top-actions">
          <ThemeToggle />
          <a href="docs">API docs</a>
        </div>
        <Settings apiKey={apiKey} onSave={saveKey} open={settingsOpen} onToggle={setSettingsOpen} keyRef={keyInput} />
      </header>
      {needsKey ? (
        <p class="auth-notice" role="alert">
          {apiKey
            ? 'This darkroom needs an API key, and it refused the saved one. Enter a valid key in Settings.'
            : 'This darkroom needs an API key. Enter it in Settings; it is kept in this browser only.'}
        </p>
      ) : null}
      <main class="layout">
        <section class="compose" aria-label="New jobs">
          <PromptForm
            values={values}
            onChange={setValues}
            onSubmit={() => void submit()}
            busy={busy}
            providers={providers}
            problem={problem}
            advancedOpen={advancedOpen}
            onAdvancedToggle={setAdvancedOpen}
            picked={images.picked}
            uploading={picked.state === 'uploading'}
            onPick={(role, file) => void images.pick(role, file)}
            onClear={images.clear}
            imagesOpen={imagesOpen}
            onImagesToggle={setImagesOpen}
            promptRef={promptInput}
          />
          <section class="jobs" aria-labelledby="jobs-title">
            <div class="section-head">
              <h2 id="jobs-title">Jobs</h2>
              {finished > 0 ? (
                <button
                  type="button"
                  onClick={() => {
                    const kept = cards.filter((card) => isActive(card.job.status));
                    cardIds.current = new Set(kept.map((card) => card.job.id));
                    setCards(kept);
                  }}
                >
                  Clear finished
                </button>
              ) : null}
            </div>
            {cards.length === 0 ? <p class="muted">Jobs you start appear here, live.</p> : null}
            <div class="cards">
              {cards.map((card) => (
                <JobCard key={card.job.id} card={card} now={now} onCancel={(id) => void cancel(id)} onOpen={openImage} />
              ))}
            </div>
          </section>
        </section>
        <Gallery gallery={gallery} onOpen={openImage} onBroken={onBroken} />
      </main>
      <Lightbox target={lightbox} onClose={closeLightbox} onReuse={reuse} />
    </>
  );
}

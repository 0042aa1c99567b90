import { Type } from 'typebox';

const Id = Type.String({ minLength: 1, maxLength: 200 });

/** POST /prompt. `prompt` is checked node by node by the protocol's reader, as ComfyUI validates it. */
export const PromptBody = Type.Object(
  {
    prompt: Type.Optional(Type.Object({}, { additionalProperties: true, maxProperties: 500, description: 'The graph in API format: node id → {class_type, inputs}' })),
    client_id: Type.Optional(Id),
    prompt_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Chosen by the client; a repeat with a known id answers the first submission' })),
    extra_data: Type.Optional(Type.Object({}, { additionalProperties: true, maxProperties: 50 })),
    front: Type.Optional(Type.Boolean()),
    number: Type.Optional(Type.Number()),
  },
  { additionalProperties: true },
);

export const HistoryQuery = Type.Object({
  max_items: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000 })),
});

export const PromptIdParams = Type.Object({ id: Id });
export const NodeClassParams = Type.Object({ node: Type.String({ minLength: 1, maxLength: 200 }) });

/** POST /queue and POST /history. */
export const ManageBody = Type.Object(
  {
    clear: Type.Optional(Type.Boolean()),
    delete: Type.Optional(Type.Array(Id, { maxItems: 100 })),
  },
  { additionalProperties: true },
);

export const InterruptBody = Type.Union([Type.Object({ prompt_id: Type.Optional(Id) }, { additionalProperties: true }), Type.Null()]);

export const ViewQuery = Type.Object({
  filename: Type.String({ minLength: 1, maxLength: 300 }),
  subfolder: Type.Optional(Type.String({ maxLength: 300 })),
  type: Type.Optional(Type.Enum(['output', 'input', 'temp'])),
  preview: Type.Optional(Type.String({ maxLength: 50 })),
  channel: Type.Optional(Type.String({ maxLength: 10 })),
});

export const WsQuery = Type.Object({ clientId: Type.Optional(Id) });
